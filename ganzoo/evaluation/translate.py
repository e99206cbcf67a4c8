"""``ganzoo translate``: a trained G over image files, written as files named by input stem.

Outputs keep the input's kind and depth unless ``out_format`` says otherwise: an 8-bit image
gives an 8-bit PNG, a 16-bit PNG a 16-bit PNG, a TIFF a TIFF of its dtype, a ``.npy``/``.npz``
a ``.npy`` (in ``data.array_layout``); ``png``, ``png16``, ``tiff``, ``npy`` or the float32
``tiff32`` / ``npy32`` choose. Values
go through the inverse of the target side's range (``data.range.B``; see
:meth:`ganzoo.data.ranges.SideRange.from_unit`).

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

import numpy as np
import torch
from torch import nn

from ganzoo.artifacts.loading import GeneratorInfo, load_generator
from ganzoo.data.dataset import pair_values
from ganzoo.data.formats import (
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    ReadOptions,
    kind,
    read_image,
    write_image,
)
from ganzoo.data.images import is_image_file, list_images
from ganzoo.data.ranges import SideRange, output_dtype_for_labels
from ganzoo.data.transforms import resize
from ganzoo.errors import DataError, GanzooError
from ganzoo.evaluation.inference import (
    MAX_GENERATOR_PIXELS,
    check_generator_pixels,
    check_resize_size,
    parse_size,
    same_size_batches,
    translate_batch,
)
from ganzoo.inference_mode import (
    InferenceMode,
    check_mode,
    generator_in_mode,
    resolve_batch_size,
    resolve_mode,
)
from ganzoo.recipe import Recipe

Layout = Literal["auto", "paired", "plain"]
Fit = Literal["pad", "resize"]
Direction = Literal["AtoB", "BtoA"]
OutFormat = Literal["png", "png16", "tiff", "npy", "tiff32", "npy32"]
_ENDINGS = " ".join(IMAGE_EXTENSIONS)


@dataclass
class Translation:
    """What :func:`translate` did."""

    outputs: list[Path] = field(default_factory=list)
    paired: int = 0  # inputs read as A|B files
    direction: str = "AtoB"
    mode: str = "auto"  # what ran: eval, train or per-sample (InferenceMode.name)
    info: GeneratorInfo | None = None
    recipe: Recipe | None = None  # the generator's
    inference: InferenceMode | None = None  # the mode's decision, .describe() in one line


def input_files(inputs: str | Path) -> list[Path]:
    """An image file, or the image files directly inside a folder (sorted by name)."""
    path = Path(inputs)
    if not path.exists():
        raise DataError(f"--input {path}: no such file or folder")
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise DataError(f"--input {path}: the folder has no images ({_ENDINGS})")
        return files
    if not is_image_file(path):
        raise DataError(f"--input {path}: not an image file ({_ENDINGS})")
    return [path]


def output_ending(path: Path, out_format: str | None) -> str:
    """The output file ending for input ``path``: by ``out_format``, else by the input's kind."""
    if out_format is not None:
        return OUTPUT_FORMATS[out_format][0]
    k = kind(path)
    return ".png" if k == "photo" else ".npy" if k == "array" else path.suffix.lower()


def output_paths(files: list[Path], output: Path, out_format: str | None = None) -> list[Path]:
    """``output/<stem><ending>`` per input; refuses two inputs with one stem or overwriting an
    input."""
    outs = [output / f"{f.stem}{output_ending(f, out_format)}" for f in files]
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
    path: Path,
    recipe: Recipe,
    direction: str,
    layout: str,
    size: tuple[int, int] | None = None,
    max_pixels: int = MAX_GENERATOR_PIXELS,
) -> tuple[torch.Tensor, bool, np.dtype]:
    """The network input of one file, float32 (in_channels, h, w) (resized to ``size`` when
    given), whether it was an A|B file, and the file's dtype. A file declaring more pixels
    than ``max_pixels`` and ``data.max_pixels`` is refused before it is decoded."""
    data = recipe.data
    values = pair_values(data)
    labels = values.labels is not None
    options = ReadOptions(
        data.params.get("array_layout", "hwc"),
        data.params.get("npz_key"),
        max(max_pixels, data.max_pixels),
        "--max-pixels",
    )
    advice = "replace it or remove it from --input"
    array = read_image(
        path, 1 if labels else data.in_channels, options=options, labels=labels, advice=advice
    )
    h, w = array.shape[-2:]
    paired = layout == "paired" or (layout == "auto" and is_pair(recipe, h, w))
    if paired:
        if w % 2:
            raise DataError(
                f"{path}: width {w} is odd, so it is not an A|B pair; pass --plain to translate "
                "the whole image"
            )
        array = array[..., : w // 2] if direction == "AtoB" else array[..., w // 2 :]
    expected = 1 if labels else data.in_channels
    if array.shape[0] != expected:
        what = "a label map has 1" if labels else f"the generator takes {expected}"
        raise DataError(f"{path}: {array.shape[0]} channel(s), but {what}; convert the file")
    if values.labels is not None:
        values.labels.check(array, str(path))
        if values.labels.instance:
            inst = read_image(instance_file(path), options=options, labels=True, advice=advice)
            if inst.shape != array.shape:
                raise DataError(
                    f"{instance_file(path)}: {inst.shape[0]}x{inst.shape[1]}x{inst.shape[2]} "
                    f"(CxHxW) but its label map {path} is {'x'.join(map(str, array.shape))}"
                )
            array = np.concatenate([array.astype(np.int64), inst.astype(np.int64)])
    else:
        values.a.check(array, str(path))
    if size is not None:
        array = resize(torch.from_numpy(np.ascontiguousarray(array)), size, labels).numpy()
    if values.labels is not None:
        out_dtype = output_dtype_for_labels(values.b.spec)
        return torch.from_numpy(values.labels.encode(array)), paired, out_dtype
    return torch.from_numpy(values.a.to_unit(array, str(path))), paired, array.dtype


def instance_file(path: Path) -> Path:
    """The instance map of label map ``path``: <its folder>_instance/<same stem>.* (as
    A/ and A_instance/ in training); a one-line DataError when there is none."""
    folder = path.parent.with_name(path.parent.name + "_instance")
    found = [p for p in list_images(folder) if p.stem == path.stem] if folder.is_dir() else []
    if not found:
        raise DataError(
            f"{path}: no instance map {folder}/{path.stem}.*; a model trained with "
            "data.labels.instance needs one next to each label map"
        )
    return found[0]


def save_image(
    image: torch.Tensor, path: Path, recipe: Recipe, in_dtype: np.dtype, out_format: str | None
) -> None:
    """Write (C, H, W) in [-1, 1] to ``path`` through the inverse of data.range.B, in the
    input's dtype (png: uint8, png16: uint16; a PNG of a float input: uint16). ``png`` asked
    for a range wider than 8 bits writes a preview: the range stretched to 0 .. 255."""
    forced = OUTPUT_FORMATS[out_format][1] if out_format is not None else None
    dtype = np.dtype(forced or in_dtype)
    if kind(path) == "photo" and dtype not in (np.uint8, np.uint16):
        dtype = np.dtype(np.uint16)
    side = pair_values(recipe.data).b
    if out_format == "png" and side.spec is not None:
        side = SideRange("B")  # the 8-bit full scale
    array = side.from_unit(image.detach().float().cpu().numpy(), dtype, str(path))
    write_image(path, array, recipe.data.params.get("array_layout", "hwc"))


def translate_files(
    net: nn.Module,
    recipe: Recipe,
    files: list[Path],
    output: str | Path,
    *,
    direction: Direction | None = None,
    size: str | tuple[int, int] | None = None,
    fit: Fit = "pad",
    mode: str = "auto",
    batch_size: int | None = None,
    layout: Layout = "auto",
    seed: int = 0,
    out_format: OutFormat | None = None,
    max_pixels: int | None = None,
) -> Translation:
    """Translate ``files`` with a loaded G into ``output`` (created); see the module docstring.
    ``max_pixels``: what G may run on per image (default :data:`MAX_GENERATOR_PIXELS`)."""
    if out_format is not None and out_format not in OUTPUT_FORMATS:
        raise GanzooError(f"format '{out_format}' is unknown; use {', '.join(OUTPUT_FORMATS)}")
    chosen = resolve_mode(net, recipe, mode)
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
    batch_size = resolve_batch_size(batch_size, chosen.name)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise GanzooError(f"--output {output}: is a file; give a folder for the translated images")
    outs = output_paths(files, output, out_format)
    output.mkdir(parents=True, exist_ok=True)
    result = Translation(direction=direction, mode=chosen.name, inference=chosen, recipe=recipe)
    device = next(net.parameters()).device

    dtypes: dict[int, np.dtype] = {}

    limit = max_pixels or MAX_GENERATOR_PIXELS
    advice = "pass --size HxW --resize to shrink it, or raise --max-pixels on a larger machine"

    def prepared() -> Iterator[tuple[int, torch.Tensor]]:
        for i, path in enumerate(files):
            image, paired, dtypes[i] = condition_image(
                path, recipe, direction, layout, target, limit
            )
            check_generator_pixels(net, *image.shape[-2:], str(path), limit, advice)
            result.paired += paired
            yield i, image

    with generator_in_mode(net, chosen, seed) as g:
        for batch in same_size_batches(prepared(), batch_size):
            x = torch.stack([image for _, image in batch]).to(device)
            y = translate_batch(g, x, pad=fit == "pad")
            for (i, _), image in zip(batch, y):
                save_image(image, outs[i], recipe, dtypes[i], out_format)
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
    mode: str = "auto",
    batch_size: int | None = None,
    layout: Layout = "auto",
    use_ema: bool = True,
    device: str = "cpu",
    seed: int = 0,
    out_format: OutFormat | None = None,
    max_pixels: int | None = None,
    checkpoint: str = "last",
) -> Translation:
    """Load G from a run directory (its ``checkpoint``: ``last`` or ``best``) / checkpoint /
    safetensors file and translate ``inputs`` (an image or a folder of images) into
    ``output/<stem>.<ending>`` (see the module docstring for the output format)."""
    check_mode(mode)
    files = input_files(inputs)
    net, recipe, info = load_generator(
        model, use_ema=use_ema, device=device, checkpoint=checkpoint, small_convs_as_matmuls=True
    )
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
        out_format=out_format,
        max_pixels=max_pixels,
    )
    result.info = info
    return result
