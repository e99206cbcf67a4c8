"""The interface of a registered dataset: a list of raw, decoded image pairs.

A dataset builder ``Cls(root, split, in_channels, out_channels, **params)`` registered with
``@register("dataset", name)`` returns a :class:`PairSource`. It only finds and decodes files;
:func:`ganzoo.data.build_dataset` adds the value ranges, label maps and the shared resizing,
cropping, flipping and caching. A plugin subclasses :class:`PairSource` and implements
``__len__``, ``path`` and ``load`` (``size`` is optional: the default decodes the pair).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ganzoo.data.formats import IMAGE_EXTENSIONS, Layout, ReadOptions, check_channels, read_image
from ganzoo.data.images import list_images
from ganzoo.errors import DataError


class PairSource:
    """Raw pairs: ``load(i)`` -> (A, B) tensors (C, H, W) of the same H, W, in the files' own
    dtype (uint8, uint16, int32, int64 or float32; values not rescaled).

    A is the network input (``in_channels``), B the target (``out_channels``): a ``direction``
    parameter has already been applied.
    """

    in_channels: int
    out_channels: int

    def __len__(self) -> int:
        raise NotImplementedError

    def path(self, index: int) -> str:
        """The file that names pair ``index`` (reported in batches and in errors)."""
        raise NotImplementedError

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode pair ``index``: (A, B) (C, H, W); a DataError naming an unreadable file."""
        raise NotImplementedError

    def size(self, index: int) -> tuple[int, int]:
        """(height, width) of both images of pair ``index``, as cheaply as possible.

        Raises DataError naming the file when it cannot be read or the two sizes differ.
        """
        a, b = self.load(index)
        if a.shape[-2:] != b.shape[-2:]:
            raise DataError(
                f"{self.path(index)}: A is {a.shape[-2]}x{a.shape[-1]} but B is "
                f"{b.shape[-2]}x{b.shape[-1]}; the two images of a pair must have the same size"
            )
        return int(a.shape[-2]), int(a.shape[-1])


class ImageFilePairs(PairSource):
    """Base of sources that decode image files: channels, label maps, ``direction`` handled once.

    ``array_layout`` is the axis order of 3-d ``.npy``/``.npz`` arrays, ``npz_key`` the array
    an ``.npz`` file is read from (needed when it holds several).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        direction: str,
        array_layout: Layout = "hwc",
        npz_key: str | None = None,
    ) -> None:
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.direction = direction
        self.options = ReadOptions(array_layout, npz_key)
        self.labels = False  # the input side is a map of class ids (see use_label_maps)

    def limit_pixels(self, max_pixels: int) -> None:
        """Refuse files declaring more than ``max_pixels`` pixels (``data.max_pixels``)."""
        self.options = replace(self.options, max_pixels=max_pixels)

    def use_label_maps(self, instance: bool = False) -> None:
        """Read the input side as single-channel class ids (with ``instance``, a second channel
        of instance ids); :class:`PairedFolders` takes the instance maps from <A>_instance/."""
        if instance:
            raise DataError(
                f"data.labels.instance: the '{type(self).__name__}' dataset has no instance "
                "maps; use data.name: paired_folders with an A_instance/ folder"
            )
        self.labels = True
        self.in_channels = 1

    def read(self, path: Path, side: str) -> np.ndarray:
        """One file of ``side`` ('in' or 'out') as (C, H, W), channel count checked."""
        channels = self.in_channels if side == "in" else self.out_channels
        labels = self.labels and side == "in"
        array = read_image(path, channels, options=self.options, labels=labels)
        if labels and array.shape[0] != 1:
            raise DataError(
                f"{path}: a label map has 1 channel of class ids but the file has "
                f"{array.shape[0]}; save the ids as a grey or palette PNG, or a 2-d .npy"
            )
        check_channels(array, channels, path, f"{side}_channels")
        return array

    def orient(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A-file, B-file) arrays -> (input, target) per ``direction``."""
        return (a, b) if self.direction == "AtoB" else (b, a)


def as_tensors(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Two arrays -> two tensors sharing their memory."""
    return torch.from_numpy(a), torch.from_numpy(b)


def split_folder(root: Path, split: str) -> Path:
    """``root/split``, or a one-line DataError: missing root, or missing split (listing splits)."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"data root {root} {what}; set data.root to a folder with one sub-folder per split "
            "(e.g. train/, val/), or to 'embedded:facades'"
        )
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        listing = ", ".join(found) if found else "none"
        raise DataError(
            f"data root {root} has no split '{split}' (splits found: {listing}); "
            "set data.train_split / data.val_split to one of them"
        )
    return folder


def images_in_split(folder: Path, hint: str = "") -> list[Path]:
    """The image files of a split folder; a DataError when there are none."""
    files = list_images(folder)
    if not files:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir())
        extra = f" (it has sub-folders {', '.join(subdirs)}{hint})" if subdirs else ""
        raise DataError(
            f"{folder}: no images ({' '.join(IMAGE_EXTENSIONS)}){extra}; "
            "put the image files of this split there"
        )
    return files
