"""The pix2pix layout: ROOT/<split>/*.jpg, each file an A|B pair side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from ganzoo.data.images import decode, image_size
from ganzoo.data.source import ImageFilePairs, images_in_split, split_folder
from ganzoo.errors import DataError
from ganzoo.registry import register

Direction = Literal["AtoB", "BtoA"]


@register(
    "dataset",
    "aligned",
    paper="Isola et al., Image-to-Image Translation with Conditional Adversarial Networks, "
    "CVPR 2017",
)
class AlignedPairs(ImageFilePairs):
    """Side-by-side A|B image files in ROOT/<split>/ (the pix2pix 'aligned' layout).

    The left half is A and the right half B; ``direction: BtoA`` makes the right half the
    input. Widths must be even, so the halves have the same size.
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
        self.files = images_in_split(
            split_folder(Path(root), split),
            hint=": for A/ and B/ folders use data.name: paired_folders",
        )

    def __len__(self) -> int:
        return len(self.files)

    def path(self, index: int) -> str:
        return str(self.files[index])

    def size(self, index: int) -> tuple[int, int]:
        h, w = image_size(self.files[index])
        _check_width(self.files[index], w)
        return h, w // 2

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[index]
        ab = decode(path)
        w, h = ab.size
        _check_width(path, w)
        return self.orient(ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h)))


def _check_width(path: Path, width: int) -> None:
    if width % 2:
        raise DataError(
            f"{path}: width {width} is odd, so it does not split into equal A|B halves; "
            "an aligned pair is A and B of the same size side by side"
        )
