"""``ganzoo translate --page``: OUTPUT/index.html, one row per image, input | output | target
(the target when the input was an A|B file), as pix2pix's ``test.py`` writes its web page;
self-contained like the reports (the rows inlined as PNGs)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from ganzoo.data.formats import read_image
from ganzoo.evaluation.translate import is_pair, output_paths
from ganzoo.recipe import Recipe
from ganzoo.report import page
from ganzoo.safe_io import write_text_atomic
from ganzoo.samples import _rgb

PAGE = "index.html"
#: Rows on one page (the page inlines them; the outputs themselves are all in OUTPUT).
MAX_ROWS = 200


def _unit(array: np.ndarray) -> torch.Tensor:
    """(C, H, W) file values -> [-1, 1] to look at: uint8 as the reference, anything else its
    own min .. max stretched."""
    x = torch.from_numpy(np.ascontiguousarray(array)).float()
    if array.dtype == np.uint8:
        return x / 127.5 - 1
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) * 2 - 1 if hi > lo else torch.zeros_like(x)


def _row_png(columns: list[torch.Tensor]) -> bytes:
    """One row of (C, H, W) images in [-1, 1], each resized to the first one's size."""
    from PIL import Image

    size = columns[0].shape[-2:]
    cols = [
        F.interpolate(c[None], size=size, mode="nearest")[0] if c.shape[-2:] != size else c
        for c in columns
    ]
    grid = make_grid(torch.cat([_rgb(c[None]) for c in cols]), nrow=len(cols), padding=2)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_translation_page(
    files: list[Path],
    output: Path,
    recipe: Recipe,
    *,
    direction: str,
    layout: str = "auto",
    out_format: str | None = None,
    title: str = "ganzoo translate",
) -> Path:
    """Write ``output/index.html`` for the translated ``files`` (whose outputs are in
    ``output``, named as :func:`~ganzoo.evaluation.translate.output_paths` names them)."""
    output = Path(output)
    rows = []
    pairs = list(zip(files, output_paths(files, output, out_format)))
    for src, out in pairs[:MAX_ROWS]:
        array = read_image(src)
        w = array.shape[-1]
        paired = layout == "paired" or (layout == "auto" and is_pair(recipe, array.shape[-2], w))
        columns = [_unit(array)]
        if paired:
            a, b = array[..., : w // 2], array[..., w // 2 :]
            condition, target = (a, b) if direction == "AtoB" else (b, a)
            columns = [_unit(condition), _unit(target)]
        columns.insert(1, _unit(read_image(out)))
        what = "input | output | target" if paired else "input | output"
        rows.append(page.sheet(_row_png(columns), f"{src.name} -> {out.name} ({what})"))
    more = len(pairs) - MAX_ROWS
    note = (
        f"<p>{more} more image(s) are in {page.esc(output)}, not shown here.</p>"
        if more > 0
        else ""
    )
    subtitle = f"{len(pairs)} image(s), {recipe.name}, direction {direction}"
    html = page.document(title, subtitle, [("Translations", "".join(rows) + note)])
    path = output / PAGE
    write_text_atomic(path, html)
    return path
