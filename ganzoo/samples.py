"""Sample sheets: one row per image, input | output | target."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torchvision.utils import save_image

from ganzoo.safe_io import write_bytes_atomic


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 3, H, W) to look at: grey (C = 1 or 2: the first channel) or the
    first three channels (RGB, or the first 3 of many: one-hot classes, 4-band stacks)."""
    x = x.detach().float().cpu()
    return x[:, :1].expand(-1, 3, -1, -1) if x.shape[1] < 3 else x[:, :3]


def save_grid(path: Path, *columns: torch.Tensor, within: Path | None = None) -> Path:
    """Save columns of (N, C, H, W) images in [-1, 1] side by side, one row per image, as a
    PNG written atomically (:func:`ganzoo.safe_io.write_bytes_atomic`; ``within``: the folder
    it must stay inside, e.g. the run directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [_rgb(c) for c in columns]
    rows = torch.stack(cols, 1).flatten(0, 1)  # (N * len(columns), 3, H, W)
    png = io.BytesIO()
    save_image((rows + 1) / 2, png, format="png", nrow=len(cols), padding=2, pad_value=1.0)
    write_bytes_atomic(path, png.getvalue(), within=within)
    return path
