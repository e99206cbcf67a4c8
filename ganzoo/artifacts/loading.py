"""A trained generator back from any source :mod:`ganzoo.artifacts.sources` resolves: a run
directory, a checkpoint ``.pt`` (read with ``weights_only=True``, never unpickling code), a
``.safetensors`` file written by ``ganzoo export`` (whose metadata carries the resolved recipe
as JSON, key ``recipe``, so the file alone rebuilds G), or a Hub folder or repository (an
official pretrained model's name is resolved to its run directory above this package, by
``ganzoo.load`` and the CLI: :func:`ganzoo.pretrained.resolve`). Weights holding a NaN or an
infinity are refused in one line naming the file (:func:`ganzoo.safe_io.refuse_nonfinite`),
whatever the source.

When the run kept an EMA of G (``optim.ema_decay``) its weights are used unless
``use_ema=False``; :class:`GeneratorInfo` says which weights were loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.artifacts.checkpoint import load_checkpoint
from ganzoo.artifacts.safetensors import read_safetensors
from ganzoo.artifacts.schema import GeneratorInfo, ema_weights
from ganzoo.artifacts.sources import find_checkpoint
from ganzoo.build import build_generator
from ganzoo.device import resolve_device
from ganzoo.errors import TrainingError
from ganzoo.nn.matmul_conv import small_convolutions_as_matmuls
from ganzoo.nn.spectral import renormalise_spectral_norm
from ganzoo.recipe import Recipe, from_dict
from ganzoo.safe_io import parse_json


def stored_recipe(tree: Any, source: Path) -> Recipe:
    if not isinstance(tree, dict):
        raise TrainingError(f"{source}: carries no recipe; it was not written by ganzoo")
    return from_dict(tree, source=f"{source} (recipe)")


def load_weights_into(net: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        raise TrainingError(
            f"{source}: its weights do not fit the generator its recipe builds "
            f"({first_mismatch(exc)})"
        ) from None


def first_mismatch(exc: RuntimeError) -> str:
    """The first line of ``load_state_dict``'s error that names a key (PyTorch's first line
    names only the module): ``Missing key(s) in state_dict: "x"``, ``size mismatch for x``."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    named = [line for line in lines if not line.startswith("Error(s) in loading")]
    return (named or lines or ["RuntimeError"])[0][:200]


def _from_checkpoint(path: Path, use_ema: bool) -> tuple[nn.Module, Recipe, GeneratorInfo]:
    state = load_checkpoint(path)
    recipe = stored_recipe(state.get("recipe"), path)
    net = build_generator(recipe)
    ema_state = state.get("ema")
    use = use_ema and isinstance(ema_state, dict) and int(ema_state.get("n_averaged", 1)) > 0
    load_weights_into(net, ema_weights(ema_state) if use else state["generator"], path)
    if use:  # an EMA saved before its spectral-norm vectors were renormalised in training
        renormalise_spectral_norm(net, tolerance=1e-4)
    step = state.get("step")
    return (
        net,
        recipe,
        GeneratorInfo(path, "checkpoint", int(step) if step is not None else None, bool(use)),
    )


def _from_safetensors(path: Path) -> tuple[nn.Module, Recipe, GeneratorInfo]:
    weights, meta = read_safetensors(path)
    try:
        tree = parse_json(meta["recipe"])
    except ValueError as exc:
        raise TrainingError(f"{path}: the recipe in its metadata is unreadable ({exc})") from None
    recipe = stored_recipe(tree, path)
    net = build_generator(recipe)
    load_weights_into(net, weights, path)
    step = meta.get("step")
    info = GeneratorInfo(
        path,
        "safetensors",
        int(step) if step and step.isdigit() and len(step) <= 18 else None,
        meta.get("ema") == "true",
    )
    return net, recipe, info


def load_generator(
    run_dir_or_checkpoint: str | Path,
    *,
    use_ema: bool = True,
    device: str | torch.device = "cpu",
    checkpoint: str = "last",
    small_convs_as_matmuls: bool = False,
) -> tuple[nn.Module, Recipe, GeneratorInfo]:
    """(G in eval mode on ``device``, its resolved recipe, where the weights came from);
    ``checkpoint``: a run directory's ``last`` or ``best`` checkpoint;
    ``small_convs_as_matmuls``: on the CPU, G's small convolutions run as matrix multiplies
    (:mod:`ganzoo.nn.matmul_conv`: the same function, faster at batch 1; not for ONNX export,
    which would trace the matrix multiplies).

    G maps (N, in_channels, H, W) in [-1, 1] to (N, out_channels, H, W) in [-1, 1].
    """
    path = find_checkpoint(run_dir_or_checkpoint, checkpoint)
    if path.suffix == ".safetensors":
        net, recipe, info = _from_safetensors(path)
    else:
        net, recipe, info = _from_checkpoint(path, use_ema)
    where = resolve_device(device)
    net.to(where).eval()
    net.requires_grad_(False)
    if small_convs_as_matmuls and where.type == "cpu":
        small_convolutions_as_matmuls(net)
    return net, recipe, info
