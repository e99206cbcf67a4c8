"""G's weights and its recipe in one safetensors file (see :mod:`ganzoo.artifacts.schema`):
the file alone rebuilds the generator. Written by ``ganzoo export --format safetensors`` and
as a Hub folder's ``model.safetensors``; read back by :func:`ganzoo.artifacts.load`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.artifacts.schema import SAFETENSORS_FORMAT, GeneratorInfo
from ganzoo.errors import TrainingError, first_line
from ganzoo.recipe import Recipe
from ganzoo.safe_io import refuse_nonfinite, write_bytes_atomic


def recipe_json(recipe: Recipe) -> str:
    return json.dumps(recipe.to_dict(), sort_keys=True)


def save_safetensors(net: nn.Module, recipe: Recipe, info: GeneratorInfo, path: Path) -> Path:
    """G's weights and its recipe (metadata) in one safetensors file."""
    from safetensors.torch import save

    weights = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    meta = {
        "format": SAFETENSORS_FORMAT,
        "recipe": recipe_json(recipe),
        "generator": recipe.generator.name,
        "ema": "true" if info.ema else "false",
        "step": "" if info.step is None else str(info.step),
    }
    write_bytes_atomic(path, save(weights, metadata=meta))
    return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, metadata) of a ganzoo safetensors file; a one-line error for an unreadable
    file, a non-finite weight or metadata without a ganzoo recipe."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        raise TrainingError(
            f"{path}: not a readable safetensors file ({first_line(exc)})"
        ) from None
    refuse_nonfinite(weights, path, "safetensors file")
    if meta.get("format") != SAFETENSORS_FORMAT or "recipe" not in meta:
        raise TrainingError(
            f"{path}: no ganzoo recipe in its metadata; export it with "
            "`ganzoo export RUN_DIR --format safetensors`"
        )
    return weights, meta
