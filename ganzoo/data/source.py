"""The interface of a registered dataset: a list of raw, decoded image pairs.

A dataset builder ``Cls(root, split, in_channels, out_channels, **params)`` registered with
``@register("dataset", name)`` returns a :class:`PairSource`. It only finds and decodes files;
:func:`ganzoo.data.build_dataset` adds the shared resizing, cropping, flipping and caching.
A plugin subclasses :class:`PairSource` and implements ``__len__``, ``path`` and ``load``
(``size`` is optional: the default decodes the pair).
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ganzoo.data.images import IMAGE_EXTENSIONS, list_images, pil_mode, to_tensor
from ganzoo.errors import DataError


class PairSource:
    """Raw pairs: ``load(i)`` -> (A, B) uint8 tensors (C, H, W) of the same H, W.

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
        """Decode pair ``index``: (A, B) uint8 (C, H, W); a DataError naming an unreadable file."""
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
    """Base of sources that decode image files: channel modes and ``direction`` handled once."""

    def __init__(self, in_channels: int, out_channels: int, direction: str) -> None:
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.direction = direction
        self._modes = (pil_mode(in_channels, "in_channels"), pil_mode(out_channels, "out_channels"))

    def orient(self, a: Image.Image, b: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded A and B files -> (input, target) uint8 tensors, per ``direction``."""
        inp, target = (a, b) if self.direction == "AtoB" else (b, a)
        return to_tensor(inp, self._modes[0]), to_tensor(target, self._modes[1])


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
