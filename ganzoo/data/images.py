"""Finding and decoding image files: uint8 tensors (C, H, W), C = 1 (PIL "L") or 3 (RGB)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ganzoo.errors import DataError

#: File endings read as images (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

#: PIL mode for a channel count.
_MODES = {1: "L", 3: "RGB"}


def pil_mode(channels: int, what: str) -> str:
    """'L' for 1 channel, 'RGB' for 3; a DataError naming ``what`` (e.g. 'in_channels') else."""
    mode = _MODES.get(channels)
    if mode is None:
        raise DataError(
            f"data.{what}={channels}: image files give 1 (grayscale) or 3 (RGB) channels; "
            "set it to 1 or 3"
        )
    return mode


def is_image_file(path: Path) -> bool:
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (not recursive)."""
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def unreadable(path: Path | str, exc: BaseException) -> DataError:
    """The one-line error for an image that cannot be opened or decoded."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(
        f"{path}: cannot read image ({reason}); "
        "replace or delete the file, or set data.skip_corrupt: true to skip it"
    )


def image_size(path: Path | str) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise unreadable(path, exc) from None
    return h, w


def decode(path: Path | str) -> Image.Image:
    """The fully decoded image as RGB (the reference converts every file to RGB first)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise unreadable(path, exc) from None


def to_tensor(img: Image.Image, mode: str) -> torch.Tensor:
    """PIL image -> uint8 tensor (C, H, W); ``mode`` 'L' converts with PIL's ITU-R 601 luma."""
    if img.mode != mode:
        img = img.convert(mode)
    array = np.asarray(img, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.array(array, order="C"))  # one writable copy
