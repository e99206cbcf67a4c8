"""``ganzoo translate``: a trained G over image files, written as PNGs named by input stem.

Inputs are plain images (the condition itself) or A|B files as in the aligned datasets, of
which the condition half is taken (the left half for ``AtoB``, the right half for ``BtoA``).
``layout="auto"`` treats a file as A|B when the model was trained on the ``aligned`` dataset and
the file is exactly two training crops wide (width * crop_h == 2 * height * crop_w: width ==
2 * height for square crops); ``"paired"`` and ``"plain"`` force either reading.

Sizes: with ``fit="pad"`` (the default) an image keeps its size (or is first resized to
``size``), is reflect-padded to the next size G accepts and its output cropped back to it; with
``fit="resize"`` it is resized to ``size`` (default: the training crop size) and the output has
that size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from PIL import Image
from torch import nn

from ganzoo.data.images import decode, is_image_file, list_images, pil_mode, to_tensor
from ganzoo.errors import DataError, GanzooError
from ganzoo.evaluation.inference import (
    check_mode,
    check_resize_size,
    generator_in_mode,
    parse_size,
    resize_uint8,
    resolve_batch_size,
    same_size_batches,
    to_uint8,
    to_unit,
    translate_batch,
)
from ganzoo.evaluation.loading import GeneratorInfo, load_generator
from ganzoo.recipe import Recipe

Layout = Literal["auto", "paired", "plain"]
Fit = Literal["pad", "resize"]
Direction = Literal["AtoB", "BtoA"]


@dataclass
class Translation:
    """What :func:`translate` did."""

    outputs: list[Path] = field(default_factory=list)
    paired: int = 0  # inputs read as A|B files
    direction: str = "AtoB"
    mode: str = "eval"
    info: GeneratorInfo | None = None


def input_files(inputs: str | Path) -> list[Path]:
    """An image file, or the image files directly inside a folder (sorted by name)."""
    path = Path(inputs)
    if not path.exists():
        raise DataError(f"--input {path}: no such file or folder")
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise DataError(f"--input {path}: the folder has no images (.jpg .png .bmp .webp)")
        return files
    if not is_image_file(path):
        raise DataError(f"--input {path}: not an image file (.jpg .jpeg .png .bmp .webp)")
    return [path]


def output_paths(files: list[Path], output: Path) -> list[Path]:
    """``output/<stem>.png`` per input; refuses two inputs with one stem or overwriting an input."""
    outs = [output / f"{f.stem}.png" for f in files]
    seen: dict[Path, Path] = {}
    for f, out in zip(files, outs):
        if out in seen:
            raise DataError(
                f"{seen[out].name} and {f.name} would both be written to {out}; rename one of them"
            )
        seen[out] = f
        if out.resolve() == f.resolve():
            raise DataError(f"{out} would overwrite its input; choose another --output folder")
    return outs


def is_pair(recipe: Recipe, height: int, width: int) -> bool:
    """The ``auto`` rule: aligned-trained model and a file two training crops wide."""
    crop_h, crop_w = recipe.data.image_size
    return recipe.data.name == "aligned" and width * crop_h == 2 * height * crop_w


def condition_image(
    path: Path, recipe: Recipe, direction: str, layout: str
) -> tuple[torch.Tensor, bool]:
    """The network input of one file, uint8 (in_channels, h, w), and whether it was an A|B file."""
    image = decode(path, advice="replace it or remove it from --input")
    w, h = image.size
    paired = layout == "paired" or (layout == "auto" and is_pair(recipe, h, w))
    if paired:
        if w % 2:
            raise DataError(
                f"{path}: width {w} is odd, so it is not an A|B pair; pass --plain to translate "
                "the whole image"
            )
        box = (0, 0, w // 2, h) if direction == "AtoB" else (w // 2, 0, w, h)
        image = image.crop(box)
    return to_tensor(image, pil_mode(recipe.data.in_channels, "in_channels")), paired


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write (C, H, W) in [-1, 1], C = 1 or 3, as an 8-bit PNG."""
    array = to_uint8(image).permute(1, 2, 0).numpy()
    mode = {1: "L", 3: "RGB"}.get(array.shape[-1])
    if mode is None:
        raise GanzooError(
            f"the generator outputs {array.shape[-1]} channels; only 1 or 3 can be saved as PNG"
        )
    Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(path)


def translate_files(
    net: nn.Module,
    recipe: Recipe,
    files: list[Path],
    output: str | Path,
    *,
    direction: Direction | None = None,
    size: str | tuple[int, int] | None = None,
    fit: Fit = "pad",
    mode: str = "eval",
    batch_size: int | None = None,
    layout: Layout = "auto",
    seed: int = 0,
) -> Translation:
    """Translate ``files`` with a loaded G into ``output`` (created); see the module docstring."""
    check_mode(mode)
    if fit not in ("pad", "resize"):
        raise GanzooError(f"fit '{fit}' is unknown; use pad or resize")
    if layout not in ("auto", "paired", "plain"):
        raise GanzooError(f"layout '{layout}' is unknown; use auto, paired or plain")
    direction = direction or recipe.data.params.get("direction", "AtoB")
    if direction not in ("AtoB", "BtoA"):
        raise GanzooError(f"direction '{direction}' is unknown; use AtoB or BtoA")
    target = parse_size(size)
    if fit == "resize":
        target = target or recipe.data.image_size
        check_resize_size(net, target)  # a one-line error now, not after reading inputs
    batch_size = resolve_batch_size(batch_size, mode)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise GanzooError(f"--output {output}: is a file; give a folder for the translated images")
    outs = output_paths(files, output)
    output.mkdir(parents=True, exist_ok=True)
    result = Translation(direction=direction, mode=mode)
    device = next(net.parameters()).device

    def prepared() -> Iterator[tuple[int, torch.Tensor]]:
        for i, path in enumerate(files):
            image, paired = condition_image(path, recipe, direction, layout)
            result.paired += paired
            if target is not None:
                image = resize_uint8(image, target)
            yield i, image

    with generator_in_mode(net, mode, seed) as g:
        for batch in same_size_batches(prepared(), batch_size):
            x = to_unit(torch.stack([image for _, image in batch])).to(device)
            y = translate_batch(g, x, pad=fit == "pad")
            for (i, _), image in zip(batch, y):
                save_png(image, outs[i])
                result.outputs.append(outs[i])
    return result


def translate(
    model: str | Path,
    inputs: str | Path,
    output: str | Path,
    *,
    direction: Direction | None = None,
    size: str | tuple[int, int] | None = None,
    fit: Fit = "pad",
    mode: str = "eval",
    batch_size: int | None = None,
    layout: Layout = "auto",
    use_ema: bool = True,
    device: str = "cpu",
    seed: int = 0,
) -> Translation:
    """Load G from a run directory / checkpoint / safetensors file and translate ``inputs``
    (an image or a folder of images) into ``output/<stem>.png``."""
    check_mode(mode)
    files = input_files(inputs)
    net, recipe, info = load_generator(model, use_ema=use_ema, device=device)
    result = translate_files(
        net,
        recipe,
        files,
        output,
        direction=direction,
        size=size,
        fit=fit,
        mode=mode,
        batch_size=batch_size,
        layout=layout,
        seed=seed,
    )
    result.info = info
    return result
