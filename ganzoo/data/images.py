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


#: What to do about an unreadable training image.
TRAINING_ADVICE = "replace or delete the file, or set data.skip_corrupt: true to skip it"
#: PIL modes of more than 8 bits per channel, which an 8-bit conversion would saturate.
DEEP_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def unreadable(path: Path | str, exc: BaseException, advice: str = TRAINING_ADVICE) -> DataError:
    """The one-line error for an image that cannot be opened or decoded."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"{path}: cannot read image ({reason[:200]}); {advice}")


def _check_depth(img: Image.Image, path: Path | str) -> None:
    """Refuse images of more than 8 bits per channel rather than saturate them."""
    if img.mode in DEEP_MODES:
        raise DataError(
            f"{path}: a {img.mode} image (more than 8 bits per channel) cannot be read as 8-bit "
            "RGB without losing it; convert it to 8 bits per channel"
        )


def image_size(path: Path | str, advice: str = TRAINING_ADVICE) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            _check_depth(img, path)
            w, h = img.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise unreadable(path, exc, advice) from None
    return h, w


def decode(path: Path | str, advice: str = TRAINING_ADVICE) -> Image.Image:
    """The fully decoded image as RGB (the reference converts every file to RGB first)."""
    try:
        with Image.open(path) as img:
            _check_depth(img, path)
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise unreadable(path, exc, advice) from None


def to_tensor(img: Image.Image, mode: str) -> torch.Tensor:
    """PIL image -> uint8 tensor (C, H, W); ``mode`` 'L' converts with PIL's ITU-R 601 luma."""
    if img.mode != mode:
        img = img.convert(mode)
    array = np.asarray(img, dtype=np.uint8)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return torch.from_numpy(np.array(array, order="C"))  # one writable copy
