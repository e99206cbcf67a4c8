"""Running a trained G on images of any size, in the test-time mode of
:mod:`ganzoo.inference_mode` (re-exported here for the callers of this module).

Sizes: a generator declares ``size_divisor`` and ``min_side``; an image is either padded
(reflect) to the next size G accepts and the output cropped back, or resized.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn
from torchvision.transforms import InterpolationMode

from ganzoo.errors import GanzooError, SizeError
from ganzoo.nn.sizes import check_image_size
from ganzoo.recipe import MAX_SIDE

Mode = Literal["auto", "eval", "train"]
T = TypeVar("T")


def parse_size(text: str | int | tuple[int, int] | None) -> tuple[int, int] | None:
    """'256' -> (256, 256); '256x512' (height x width) -> (256, 512); None stays None.
    Sides must be 1 .. :data:`ganzoo.recipe.MAX_SIDE` (one-line GanzooError otherwise)."""
    if text is None:
        return None
    if isinstance(text, int):
        text = (text, text)
    if isinstance(text, tuple):
        h, w = int(text[0]), int(text[1])
    else:
        m = re.fullmatch(r"\s*(\d{1,9})\s*(?:[xX]\s*(\d{1,9}))?\s*", str(text))
        if not m:
            raise GanzooError(
                f"size '{str(text)[:40]}': expected N or HxW with positive integers, e.g. 256x512"
            )
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) is not None else h
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise GanzooError(f"size {h}x{w}: each side must be between 1 and {MAX_SIDE}")
    return (h, w)


def valid_size(net: nn.Module, h: int, w: int) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) that ``net`` accepts (its size_divisor, min_side)."""
    divisor = int(getattr(net, "size_divisor", 1))
    min_side = int(getattr(net, "min_side", 1))

    def side(s: int) -> int:
        return -(-max(s, min_side) // divisor) * divisor

    return side(h), side(w)


def pad_to(x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, h, w) to (N, C, H, W), centred, by reflection (replication where the image is
    too small to reflect); returns the padded batch and the (top, left) offset of the image."""
    h, w = x.shape[-2:]
    ph, pw = size[0] - h, size[1] - w
    if ph == 0 and pw == 0:
        return x, (0, 0)
    top, left = ph // 2, pw // 2
    pads = (left, pw - left, top, ph - top)
    reflectable = max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h
    return F.pad(x, pads, mode="reflect" if reflectable else "replicate"), (top, left)


def resize_uint8(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, h, w) -> uint8 (C, H, W): bicubic with antialias, as the data pipeline."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return TF.resize(image, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 (..., C, H, W) in [0, 255] -> float32 in [-1, 1] (x / 127.5 - 1, as training)."""
    return image.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (..., C, H, W) in [-1, 1] -> uint8 in [0, 255] (rounded, clamped)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


@torch.no_grad()
def translate_batch(net: nn.Module, x: torch.Tensor, *, pad: bool = True) -> torch.Tensor:
    """G on a batch of one size: (N, C, h, w) in [-1, 1] -> (N, C', h, w) in [-1, 1].

    With ``pad`` the batch is reflect-padded to the next size G accepts and the output is
    cropped back; without it the size must already be valid (else a one-line SizeError).
    An output holding a NaN or an infinity is a one-line GanzooError, never an image.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if not pad:
        check_image_size(net, "the generator", h, w)
        return finite_output(net(x))
    padded, (top, left) = pad_to(x, valid_size(net, h, w))
    return finite_output(net(padded)[..., top : top + h, left : left + w])


def finite_output(y: torch.Tensor) -> torch.Tensor:
    """``y`` when every value is finite, else a one-line GanzooError (a broken model must not
    write black images and exit 0)."""
    if not bool(torch.isfinite(y).all()):
        raise GanzooError(
            "the generator's output holds NaN or infinite values (its weights are broken, or "
            "the input is far outside its range); nothing was written for these images"
        )
    return y


def check_resize_size(
    net: nn.Module, size: tuple[int, int], advice: str = "pass --size accordingly, or --pad"
) -> None:
    """A one-line SizeError, ending with ``advice``, when G cannot take ``size`` (h, w)."""
    try:
        check_image_size(net, "the generator", *size)
    except SizeError as exc:
        raise SizeError(
            str(exc).replace("(set data.crop_size accordingly)", f"({advice})")
        ) from None


#: Pixels (height x width, summed over a batch) G is run on at once: eight 512x512 images; a
#: larger image goes alone, so eight 4000x3000 photos never share a batch.
PIXEL_BUDGET = 8 * 512 * 512


def same_size_batches(
    items: Iterable[tuple[T, torch.Tensor]], batch_size: int, pixel_budget: int = PIXEL_BUDGET
) -> Iterator[list[tuple[T, torch.Tensor]]]:
    """Group consecutive (key, image) items whose images have one shape: at most
    ``batch_size`` of them and at most ``pixel_budget`` pixels together (an image larger than
    the budget makes a batch of one)."""
    batch: list[tuple[T, torch.Tensor]] = []
    for item in items:
        pixels = int(item[1].shape[-1]) * int(item[1].shape[-2])
        if batch and (
            len(batch) == batch_size
            or item[1].shape != batch[0][1].shape
            or (len(batch) + 1) * pixels > pixel_budget
        ):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


#: Pixels (height x width, as padded) of one image G is run on at most, by default: 3 x 2^20
#: (e.g. 2048 x 1536; pix2pixHD's 2048 x 1024 fits). Measured on CPU in fp32 (peak RSS of one
#: forward pass at 256-512 px), G needs about 0.6 KiB per pixel (pix2pix U-Net), 0.7-1.1 KiB
#: (ResNet-9, pix2pixHD global and local, Lines2Face), 5-6 KiB (SPADE, the MRU generators):
#: at most 17 GiB at this bound, within a 24 GiB machine. ``--max-pixels`` /
#: ``Translator.max_pixels`` change it.
MAX_GENERATOR_PIXELS = 3 * 2**20


def check_generator_pixels(
    net: nn.Module, h: int, w: int, what: str, max_pixels: int, advice: str
) -> None:
    """A one-line SizeError when G would run on more than ``max_pixels`` pixels for an (h, w)
    image (padded to the next size it takes), before any memory is spent on it."""
    ph, pw = valid_size(net, h, w)
    if ph * pw > max_pixels:
        raise SizeError(
            f"{what}: the generator would run on {ph}x{pw} pixels ({ph * pw:,}), more than the "
            f"{max_pixels:,} allowed; {advice}"
        )
