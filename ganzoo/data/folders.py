"""Pairs in two folders: ROOT/<split>/A/x.png <-> ROOT/<split>/B/x.png, matched by file stem."""

from __future__ import annotations

from pathlib import Path

import torch

from ganzoo.data.aligned import Direction
from ganzoo.data.images import decode, image_size
from ganzoo.data.source import ImageFilePairs, images_in_split, split_folder
from ganzoo.errors import DataError
from ganzoo.registry import register


@register("dataset", "paired_folders")
class PairedFolders(ImageFilePairs):
    """Pairs from ROOT/<split>/A/ and ROOT/<split>/B/, matched by file name without extension.

    ``direction: BtoA`` makes the B folder the input. Each file in A needs exactly one partner
    in B of the same size (x.png may pair with x.jpg).
    """

    def __init__(
        self,
        root: Path | str,
        split: str,
        in_channels: int = 3,
        out_channels: int = 3,
        direction: Direction = "AtoB",
    ) -> None:
        super().__init__(in_channels, out_channels, direction)
        folder = split_folder(Path(root), split)
        for side in ("A", "B"):
            if not (folder / side).is_dir():
                raise DataError(
                    f"{folder}: no '{side}' folder; paired_folders expects {folder}/A/ and "
                    f"{folder}/B/ holding files with the same names"
                )
        a_files = _by_stem(images_in_split(folder / "A"))
        b_files = _by_stem(images_in_split(folder / "B"))
        for mine, other, side in ((a_files, b_files, "B"), (b_files, a_files, "A")):
            lonely = sorted(set(mine) - set(other))
            if lonely:
                more = f" (and {len(lonely) - 1} more)" if len(lonely) > 1 else ""
                raise DataError(
                    f"{mine[lonely[0]]} has no partner in {folder / side}{more}; files are "
                    "paired by name without extension, so add or remove the unmatched files"
                )
        self.pairs = [(a_files[stem], b_files[stem]) for stem in sorted(a_files)]

    def __len__(self) -> int:
        return len(self.pairs)

    def path(self, index: int) -> str:
        return str(self.pairs[index][0])

    def size(self, index: int) -> tuple[int, int]:
        a_path, b_path = self.pairs[index]
        a_size, b_size = image_size(a_path), image_size(b_path)
        _check_same_size(a_path, b_path, a_size, b_size)
        return a_size

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        a_path, b_path = self.pairs[index]
        a, b = decode(a_path), decode(b_path)
        _check_same_size(a_path, b_path, a.size[::-1], b.size[::-1])
        return self.orient(a, b)


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


def _check_same_size(
    a_path: Path, b_path: Path, a_size: tuple[int, int], b_size: tuple[int, int]
) -> None:
    if tuple(a_size) != tuple(b_size):
        raise DataError(
            f"{a_path} is {a_size[0]}x{a_size[1]} but its partner {b_path} is "
            f"{b_size[0]}x{b_size[1]} (HxW); the two images of a pair must have the same size"
        )
