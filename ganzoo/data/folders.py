"""Pairs in two folders: ROOT/<split>/A/x.png <-> ROOT/<split>/B/x.png, matched by file stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganzoo.data.aligned import Direction
from ganzoo.data.formats import Layout, read_image, read_size
from ganzoo.data.source import ImageFilePairs, as_tensors, images_in_split, split_folder
from ganzoo.errors import DataError
from ganzoo.registry import register


@register("dataset", "paired_folders")
class PairedFolders(ImageFilePairs):
    """Pairs from ROOT/<split>/A/ and ROOT/<split>/B/, matched by file name without extension.

    ``direction: BtoA`` makes the B folder the input. Each file in A needs exactly one partner
    in B of the same size (x.png may pair with x.tif: A and B may differ in format, depth and
    channels). With ``data.labels.instance`` the input's instance maps are in <A>_instance/.
    """

    def __init__(
        self,
        root: Path | str,
        split: str,
        in_channels: int = 3,
        out_channels: int = 3,
        direction: Direction = "AtoB",
        array_layout: Layout = "hwc",
        npz_key: str | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, direction, array_layout, npz_key)
        self.folder = folder = split_folder(Path(root), split)
        for side in ("A", "B"):
            if not (folder / side).is_dir():
                raise DataError(
                    f"{folder}: no '{side}' folder; paired_folders expects {folder}/A/ and "
                    f"{folder}/B/ holding files with the same names"
                )
        a_files = _by_stem(images_in_split(folder / "A"))
        b_files = _by_stem(images_in_split(folder / "B"))
        _check_partners(a_files, b_files, folder)
        self.pairs = [(a_files[stem], b_files[stem]) for stem in sorted(a_files)]
        self.instances: list[Path] | None = None

    def use_label_maps(self, instance: bool = False) -> None:
        self.labels = True
        self.in_channels = 1
        if not instance:
            return
        side = "A" if self.direction == "AtoB" else "B"
        inst = self.folder / f"{side}_instance"
        if not inst.is_dir():
            raise DataError(
                f"{self.folder}: no '{side}_instance' folder; data.labels.instance reads the "
                f"instance map of each label map from {inst}/ (same names)"
            )
        files = _by_stem(images_in_split(inst))
        inputs = {p[0 if side == "A" else 1].stem: p[0 if side == "A" else 1] for p in self.pairs}
        _check_partners(inputs, files, self.folder, names=(side, f"{side}_instance"))
        self.instances = [files[(a if side == "A" else b).stem] for a, b in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def path(self, index: int) -> str:
        return str(self.pairs[index][0])

    def paths(self, index: int) -> tuple[str, str]:
        """(input file, target file) of pair ``index``."""
        a, b = self.pairs[index]
        return (str(a), str(b)) if self.direction == "AtoB" else (str(b), str(a))

    def size(self, index: int) -> tuple[int, int]:
        a_path, b_path = self.pairs[index]
        a_size, b_size = read_size(a_path, self.options), read_size(b_path, self.options)
        _check_same_size(a_path, b_path, a_size, b_size)
        return a_size

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        a_path, b_path = self.pairs[index]
        in_path, out_path = (a_path, b_path) if self.direction == "AtoB" else (b_path, a_path)
        inp, target = self.read(in_path, "in"), self.read(out_path, "out")
        _check_same_size(in_path, out_path, inp.shape[-2:], target.shape[-2:])
        if self.instances is not None:
            inst_path = self.instances[index]
            inst = read_image(inst_path, options=self.options, labels=True)
            if inst.shape[0] != 1:
                raise DataError(f"{inst_path}: an instance map has 1 channel, not {inst.shape[0]}")
            _check_same_size(in_path, inst_path, inp.shape[-2:], inst.shape[-2:])
            inp = np.concatenate([inp.astype(np.int64), inst.astype(np.int64)])
        return as_tensors(inp, target)


def _by_stem(files: list[Path]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in files:
        if f.stem in out:
            raise DataError(
                f"{f} and {out[f.stem]} have the same name without extension, so the pairing "
                "is ambiguous; keep one of them"
            )
        out[f.stem] = f
    return out


def _check_partners(
    a_files: dict[str, Path],
    b_files: dict[str, Path],
    folder: Path,
    names: tuple[str, str] = ("A", "B"),
) -> None:
    for mine, other, side in ((a_files, b_files, names[1]), (b_files, a_files, names[0])):
        lonely = sorted(set(mine) - set(other))
        if lonely:
            more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
            raise DataError(
                f"{mine[lonely[0]]} has no partner in {folder / side}{more}; files are "
                "paired by name without extension, so add or remove the unmatched files"
            )


def _check_same_size(
    a_path: Path, b_path: Path, a_size: tuple[int, ...], b_size: tuple[int, ...]
) -> None:
    if tuple(a_size) != tuple(b_size):
        raise DataError(
            f"{a_path} is {a_size[0]}x{a_size[1]} but its partner {b_path} is "
            f"{b_size[0]}x{b_size[1]} (HxW); the two images of a pair must have the same size"
        )
