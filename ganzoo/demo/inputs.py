"""What the demo page sends -> the model's input, and the model's output -> a picture.

The editor's canvas arrives as an RGB ``(H, W, 3)`` uint8 array: a sketch (black strokes on
white; a 1-channel model sees it in grey), a painted label map (each colour the nearest class
of :func:`label_palette`, then class ids as ``ganzoo.load``'s models take them) or a picture.
An uploaded file goes through ``ganzoo translate``'s reader (any format it reads, A|B files
cut to their input half, label maps as class ids). ``fit`` is translate's: ``pad`` keeps the
size (G pads and crops back), ``resize`` resizes to the training size first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganzoo.api import Translator
from ganzoo.data.ranges import SideRange
from ganzoo.data.transforms import resize
from ganzoo.errors import DataError, GanzooError
from ganzoo.evaluation.inference import check_generator_pixels
from ganzoo.evaluation.translate import condition_image

FITS = ("pad", "resize")


def label_palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours, all distinct: the bits of the class id spread over R, G
    and B from the most significant bit down (the PASCAL VOC colour-map rule; class 0 black)."""
    palette = np.zeros((num_classes, 3), np.uint8)
    for i in range(num_classes):
        c, rgb = i, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        palette[i] = rgb
    return palette


def hex_colour(rgb: Any) -> str:
    """(r, g, b) -> '#rrggbb'."""
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def canvas_array(value: Any) -> np.ndarray | None:
    """The editor's value (a dict with its ``composite``, else its ``background``: a picture
    just uploaded, not drawn on yet; or an array) -> (H, W, 3) uint8, or None when there is no
    picture yet."""
    if isinstance(value, dict):
        composite = value.get("composite")
        value = composite if composite is not None else value.get("background")
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise DataError(f"the canvas is {array.shape}; expected an RGB picture")
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def canvas_digest(value: Any) -> str | None:
    """A short digest of the editor's picture (None when there is none): equal pictures, equal
    digests."""
    import hashlib

    try:
        rgb = canvas_array(value)
    except DataError:
        return "unreadable"
    if rgb is None:
        return None
    return hashlib.sha1(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()


def colours_to_ids(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) int32 ids of the nearest palette colour (a brush's
    anti-aliased edge goes to the closer of its two classes)."""
    flat = rgb.reshape(-1, 3).astype(np.int32)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    distance = ((colours[:, None, :] - palette[None].astype(np.int32)) ** 2).sum(-1)
    return distance.argmin(1)[inverse.reshape(-1)].reshape(rgb.shape[:2]).astype(np.int32)


def _resized(array: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """(H, W) or (H, W, C) -> the same at ``size``, with translate's resize."""
    chw = torch.from_numpy(
        np.ascontiguousarray(array.reshape(*array.shape[:2], -1).transpose(2, 0, 1))
    )
    out = resize(chw, size, nearest).numpy().transpose(1, 2, 0)
    return out[..., 0] if array.ndim == 2 else out


def canvas_input(rgb: np.ndarray, model: Translator, kind: str, fit: str) -> Image.Image:
    """The canvas -> what ``model`` takes: a PIL picture, or (label models) a PIL image of
    class ids. A picture too large for G is refused before it is converted."""
    check_fit(fit)
    recipe = model.recipe
    if fit == "pad":
        h, w = rgb.shape[:2]
        advice = "shrink it, or choose resize"
        check_generator_pixels(model.generator, h, w, "the picture", model.max_pixels, advice)
    labels = recipe.data.labels
    if kind == "labels" and labels is not None:
        ids = colours_to_ids(rgb, label_palette(labels.num_classes))
        if fit == "resize":
            ids = _resized(ids, recipe.data.image_size, nearest=True)
        return Image.fromarray(ids.astype(np.int32))
    if fit == "resize":
        rgb = _resized(rgb, recipe.data.image_size, nearest=False)
    return Image.fromarray(rgb)


def file_input(path: str | Path, model: Translator, fit: str) -> torch.Tensor:
    """An uploaded file -> the network input (C, H, W) float32, read as ``ganzoo translate``
    reads it (a file declaring more pixels than ``model.max_pixels`` is refused before it is
    decoded)."""
    check_fit(fit)
    recipe = model.recipe
    direction = recipe.data.params.get("direction", "AtoB")
    size = recipe.data.image_size if fit == "resize" else None
    x, _, _ = condition_image(Path(path), recipe, direction, "auto", size, model.max_pixels)
    return x


def check_fit(fit: str) -> None:
    if fit not in FITS:
        raise GanzooError(f"fit '{fit}' is unknown; use {' or '.join(FITS)}")


def preview(y: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> an 8-bit (H, W) or (H, W, C) picture of it."""
    out = SideRange("B").from_unit(y.clamp(-1, 1).cpu().numpy(), np.dtype(np.uint8), "output")
    out = out.transpose(1, 2, 0)
    return out[..., 0] if out.shape[2] == 1 else out
