"""The pix2pix layout: ROOT/<split>/*.jpg, each file an A|B pair side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from ganzoo.data.formats import Layout, read_size
from ganzoo.data.source import ImageFilePairs, as_tensors, images_in_split, split_folder
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
    input. Widths must be even, so the halves have the same size. Files of 8 or 16 bits per
    channel; both halves have the file's channels (in_channels and out_channels then pick
    grey or RGB of it).
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
        self.files = images_in_split(
            split_folder(Path(root), split),
            hint=": for A/ and B/ folders use data.name: paired_folders",
        )

    def use_label_maps(self, instance: bool = False) -> None:
        raise DataError(
            "data.labels: the aligned layout holds images, not label maps; put the label maps "
            "in A/ and the images in B/ and use data.name: paired_folders"
        )

    def __len__(self) -> int:
        return len(self.files)

    def path(self, index: int) -> str:
        return str(self.files[index])

    def size(self, index: int) -> tuple[int, int]:
        h, w = read_size(self.files[index], self.options)
        _check_width(self.files[index], w)
        return h, w // 2

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        path = self.files[index]
        full_in = self.read(path, "in")
        same = self.in_channels == self.out_channels
        full_out = full_in if same else self.read(path, "out")  # a second decode only then
        w = full_in.shape[-1]
        _check_width(path, w)
        half = w // 2
        if self.direction == "AtoB":
            inp, target = full_in[..., :half], full_out[..., half:]
        else:
            inp, target = full_in[..., half:], full_out[..., :half]
        return as_tensors(inp.copy(), target.copy())


def _check_width(path: Path, width: int) -> None:
    if width % 2:
        raise DataError(
            f"{path}: width {width} is odd, so it does not split into equal A|B halves; "
            "an aligned pair is A and B of the same size side by side"
        )
