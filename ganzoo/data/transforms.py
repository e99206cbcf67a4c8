"""The shared pix2pix preprocessing of a pair, on tensors (C, H, W) of any dtype and channels.

Two stages. ``prepare`` is the deterministic resize (cached once per image when
``data.cache`` is on; it keeps the dtype); ``augment`` draws the random crop and flip from a
generator and applies THE SAME crop and flip to A and B, then maps each to float32 with its
encoder (by default uint8 -> [-1, 1], x/127.5 - 1; see :mod:`ganzoo.data.ranges` and
:mod:`ganzoo.data.labels`).
``augment`` works in numpy: single-threaded, so it never competes with the training step for
torch's intra-op threads (on a busy CPU that contention made it 100x slower).

Training follows the reference ``get_transform`` for each ``preprocess``:

================== =============================================== =========================
preprocess          training                                        evaluation (train=False)
================== =============================================== =========================
resize_and_crop     bicubic resize to load_size, random crop        resize to crop_size
crop                random crop                                     centre crop
scale_width         width to load_size, keep aspect (height >=      same as training
                    crop height)
scale_width_and_    scale_width, random crop                        width to crop width,
crop                                                                centre crop
none                sides to a multiple of 4 (bicubic)              same as training
================== =============================================== =========================

Evaluation follows the reference test options, which set load_size = crop_size "to avoid
cropping", and centres the crop where one is still needed, so validation is deterministic.
Horizontal flips only happen in training. For a non-square crop (h, w) with resize_and_crop,
load_size applies to the shorter crop side and the other side is scaled by the same jitter
ratio (crop (256, 512), load_size 286 -> resize to 286x572).

The resize of uint8 images uses torchvision's uint8 bicubic with antialias, which matches PIL's
bicubic (the reference) to within 1 grey level on under 1% of pixels; other dtypes are resized
as float32 (bicubic, antialias) and rounded back to their dtype; label maps (``nearest``) take
the pixel under each output pixel's centre (PIL's ``NEAREST``, as pix2pixHD and SPADE resize
labels), so no new class ids appear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from ganzoo.errors import DataError

PREPROCESS = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
#: none: each side becomes a multiple of this (the reference's ``__make_power_2`` base).
SIDE_MULTIPLE = 4


@dataclass(frozen=True)
class PairTransform:
    """Geometry of one split: ``crop`` is (height, width); ``train`` turns random crop/flip on."""

    preprocess: str
    load_size: int
    crop: tuple[int, int]
    flip: bool
    train: bool

    def __post_init__(self) -> None:
        if self.preprocess not in PREPROCESS:
            raise DataError(
                f"data.preprocess '{self.preprocess}' is unknown; "
                f"use one of {', '.join(PREPROCESS)}"
            )
        ch, cw = self.crop
        if ch < 1 or cw < 1:
            raise DataError(f"data.crop_size {ch}x{cw} must be positive")
        if self.train and self.preprocess == "resize_and_crop" and self.load_size < min(ch, cw):
            raise DataError(
                f"data.load_size {self.load_size} is smaller than data.crop_size {_hw(self.crop)}; "
                "resize_and_crop needs load_size >= crop size (the reference jitter is 286 -> 256)"
            )
        if self.train and self.preprocess == "scale_width_and_crop" and self.load_size < cw:
            raise DataError(
                f"data.load_size {self.load_size} is smaller than the crop width {cw}; "
                "scale_width_and_crop needs load_size >= crop width"
            )

    @property
    def crops(self) -> bool:
        return "crop" in self.preprocess

    # -- deterministic stage -------------------------------------------------------------
    def prepared_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) of an h x w image after the deterministic resize."""
        ch, cw = self.crop
        p = self.preprocess
        if p == "resize_and_crop":
            if not self.train:
                return ch, cw
            short = min(ch, cw)
            return round(self.load_size * ch / short), round(self.load_size * cw / short)
        if p in ("scale_width", "scale_width_and_crop"):
            target = self.load_size if self.train or p == "scale_width" else cw
            if w == target and h >= ch:
                return h, w
            return int(max(target * h / w, ch)), target
        if p == "none":
            return _multiple(h), _multiple(w)
        return h, w  # crop

    def check_size(self, h: int, w: int, path: str) -> None:
        """A DataError naming ``path`` when an h x w image cannot give a crop."""
        if not self.crops:
            return
        ph, pw = self.prepared_size(h, w)
        ch, cw = self.crop
        if ph < ch or pw < cw:
            raise DataError(
                f"{path}: image {h}x{w} is smaller than data.crop_size {_hw(self.crop)} "
                f"(after preprocess '{self.preprocess}': {ph}x{pw}); lower crop_size or use "
                "preprocess resize_and_crop"
            )

    def prepare(self, image: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        """(C, H, W) -> (C, H', W') of the same dtype: the resize, if any (bicubic; nearest
        for label maps)."""
        h, w = image.shape[-2:]
        size = self.prepared_size(int(h), int(w))
        if size == (h, w):
            return image
        return resize(image, size, nearest)

    # -- random stage --------------------------------------------------------------------
    def draw(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, bool]:
        """(top, left, flip) for a prepared h x w pair.

        Three numbers are always drawn in the same order, so switching ``flip`` off does not
        change the crops (ablation variants see the same crops).
        """
        ch, cw = self.crop
        top_u, left_u, flip_u = rng.random(3)
        if not self.crops:
            top = left = 0
        elif self.train:
            top = int(top_u * (h - ch + 1))
            left = int(left_u * (w - cw + 1))
        else:  # centre, as torchvision's center_crop
            top = int(round((h - ch) / 2.0))
            left = int(round((w - cw) / 2.0))
        return top, left, bool(self.train and self.flip and flip_u < 0.5)

    def augment(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        rng: np.random.Generator,
        encode: tuple[Encoder, Encoder] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prepared A, B (C, H, W) -> float32 A, B (C', h, w), the same crop/flip for both;
        ``encode`` maps each cropped array to float32 (default: uint8 -> [-1, 1])."""
        h, w = a.shape[-2:]
        top, left, flip = self.draw(int(h), int(w), rng)
        out = []
        for x, enc in zip((a.numpy(), b.numpy()), encode or (uint8_to_unit, uint8_to_unit)):
            if self.crops:
                x = x[..., top : top + self.crop[0], left : left + self.crop[1]]
            if flip:
                x = x[..., ::-1]
            out.append(torch.from_numpy(np.ascontiguousarray(enc(x))))
        return out[0], out[1]


#: Maps a cropped (C, h, w) array to the network's float32 values.
Encoder = Callable[[np.ndarray], np.ndarray]


def uint8_to_unit(x: np.ndarray) -> np.ndarray:
    """uint8 (C, h, w) -> float32 in [-1, 1] (x / 127.5 - 1, the reference)."""
    y = x.astype(np.float32, order="C")
    y /= np.float32(127.5)
    y -= np.float32(1.0)
    return y


def resize(image: torch.Tensor, size: tuple[int, int], nearest: bool = False) -> torch.Tensor:
    """(C, H, W) of any dtype -> (C, h, w) of that dtype: centre-aligned nearest pixel (label
    maps, :func:`nearest_indices`), uint8 bicubic with antialias (torchvision's, as PIL), or
    bicubic with antialias in float32 and rounded and limited back for integer dtypes."""
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if nearest:
        rows, cols = nearest_indices(h, size[0]), nearest_indices(w, size[1])
        return torch.from_numpy(np.ascontiguousarray(image.numpy()[:, rows][:, :, cols]))
    if image.dtype == torch.uint8:
        return TF.resize(image, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
    array = image.numpy()
    x = torch.from_numpy(array.astype(np.float32))
    y = TF.resize(x, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True).numpy()
    if array.dtype.kind in "ui":
        info = np.iinfo(array.dtype)
        y = np.clip(np.round(y), info.min, info.max)
    return torch.from_numpy(y.astype(array.dtype))


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """(size_out,) int64 source indices of PIL's ``Image.NEAREST`` resize, the label resize of
    pix2pixHD's and SPADE's datasets: the pixel under each output pixel's centre,
    floor((i + 0.5) * in / out) (torch's ``nearest-exact``; torch's legacy ``nearest`` takes
    floor(i * in / out), up to one source pixel up-left). The centres are accumulated in
    float64 as PIL's ``ImagingScaleAffine`` does, so exact ties round as PIL's do."""
    scale = size_in / size_out
    centres = np.full(size_out, scale)
    centres[0] = scale * 0.5
    index = np.cumsum(centres).astype(np.int64)  # sequential sums, truncated: PIL's COORD
    return np.minimum(index, size_in - 1)


def _multiple(side: int) -> int:
    # the reference rounds half to even (Python's round) and never reaches 0 here
    return max(SIDE_MULTIPLE, int(round(side / SIDE_MULTIPLE) * SIDE_MULTIPLE))


def _hw(crop: tuple[int, int]) -> str:
    return f"{crop[0]}x{crop[1]}" if crop[0] != crop[1] else str(crop[0])
