"""What a recipe builds: parameter counts, output shapes, FLOPs, receptive fields."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganzoo.build import build_discriminator, build_generator
from ganzoo.nn.receptive_field import receptive_field_by_probe
from ganzoo.recipe import Recipe


@dataclass
class NetworkSummary:
    """One network at the recipe's crop size, batch 1."""

    role: str
    name: str
    params: int
    input_shape: tuple[int, ...]
    output_shapes: list[tuple[int, ...]]
    gflops: float  # one forward pass, batch 1 (a multiply-add counts as 2 FLOPs)
    receptive_fields: list[tuple[int, int]] = field(default_factory=list)
    frozen: int = 0  # weights of a frozen pretrained network (not trained, not saved)


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count_frozen(net: nn.Module) -> int:
    """Weights ``net`` uses but never trains: a frozen network's (``frozen_parameters()``,
    kept as buffers) and parameters with ``requires_grad`` off."""
    declared = getattr(net, "frozen_parameters", None)
    frozen = sum(t.numel() for t in declared()) if declared is not None else 0
    return frozen + sum(p.numel() for p in net.parameters() if not p.requires_grad)


def _forward_flops(net: nn.Module, x: torch.Tensor) -> tuple[object, float]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = net(x)
    return out, counter.get_total_flops() / 1e9


def summarize(recipe: Recipe, *, receptive_fields: bool = True) -> list[NetworkSummary]:
    """Build G and D for ``recipe`` (eval mode) and measure them at the crop size."""
    h, w = recipe.data.image_size
    d_in, d_out = recipe.data.in_channels, recipe.data.out_channels
    torch.manual_seed(0)
    g = build_generator(recipe).eval()
    x = torch.zeros(1, d_in, h, w)
    y, g_flops = _forward_flops(g, x)
    out = [
        NetworkSummary(
            "generator",
            recipe.generator.name,
            count_params(g),
            tuple(x.shape),
            [tuple(y.shape)],
            g_flops,
            frozen=count_frozen(g),
        )
    ]
    d = build_discriminator(recipe).eval()
    pair = torch.zeros(1, d_in + d_out, h, w)
    branches, d_flops = _forward_flops(d, pair)
    # probe on inputs up to 4x larger so a field wider than the crop is measured, not clipped
    # not defined for a D that resizes its input to a backbone's size (has_receptive_field)
    rf = (
        receptive_field_by_probe(d, d_in + d_out, h, w, max_side=4 * max(h, w))
        if receptive_fields and getattr(d, "has_receptive_field", True)
        else []
    )
    out.append(
        NetworkSummary(
            "discriminator",
            recipe.discriminator.name,
            count_params(d),
            tuple(pair.shape),
            [tuple(b[-1].shape) for b in branches],
            d_flops,
            rf,
            count_frozen(d),
        )
    )
    return out
