"""Precise-BN calibration of a generator from its recipe's training images.

:func:`calibrate_generator` recomputes G's BatchNorm running statistics
(:func:`ganzoo.nn.precise_bn.recompute_bn_statistics`) over ``images`` training images, drawn
in a fixed order from the recipe's seed and prepared with the deterministic evaluation
preprocessing (``train=False``: what ``translate`` and ``eval`` feed G), in batches of
``data.batch_size`` (the batch size whose statistics G was trained on). It draws no random
numbers, so a training run that calibrates at its end continues bit for bit on resume.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ganzoo.data import build_dataset
from ganzoo.errors import DataError
from ganzoo.nn.precise_bn import batchnorm_layers, recompute_bn_statistics
from ganzoo.recipe import Recipe

#: Images ``ganzoo calibrate`` averages over by default (the issue's diagnosis used 400).
DEFAULT_IMAGES = 400


def calibration_batches(
    recipe: Recipe, images: int, device: torch.device | str = "cpu", split: str | None = None
) -> Iterator[torch.Tensor]:
    """Up to ``images`` condition images (A) of ``split`` (default the training split), in a
    seeded order, batched by ``data.batch_size``: (N, C, H, W) float32 in [-1, 1] on ``device``."""
    split = split or recipe.data.train_split
    ds = build_dataset(recipe.data, split, train=False, seed=recipe.seed)
    if len(ds) == 0:
        raise DataError(f"split '{split}' of {recipe.data.root} holds no pairs to calibrate on")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(recipe.seed))
    batch: list[torch.Tensor] = []
    for i in order[:images].tolist():
        batch.append(ds[(0, i)]["A"])
        if len(batch) == recipe.data.batch_size:
            yield torch.stack(batch).to(device)
            batch = []
    if batch:
        yield torch.stack(batch).to(device)


def calibrate_generator(
    net: nn.Module, recipe: Recipe, images: int, split: str | None = None
) -> int:
    """Recompute ``net``'s BatchNorm statistics over ``images`` images (see the module
    docstring); returns the number used (0 when ``net`` has no BatchNorm)."""
    if not batchnorm_layers(net):
        return 0
    device = next(net.parameters()).device
    return recompute_bn_statistics(net, calibration_batches(recipe, images, device, split), images)
