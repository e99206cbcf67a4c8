"""Recipe -> components: the only place that turns recipe sections into modules."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganzoo import registry
from ganzoo.errors import SizeError
from ganzoo.nn.sizes import check_image_size
from ganzoo.recipe import ComponentSection, Recipe

#: The most parameters a generator or discriminator may have (8 GiB of float32 weights): a
#: recipe, or one read from a downloaded file, cannot make ganzoo allocate more.
MAX_PARAMETERS = 2**31


def _create(kind: str, name: str, **kwargs: Any) -> nn.Module:
    """Build on the meta device first (no memory, no RNG draws) to count the parameters, then
    for real; a one-line SizeError when the count exceeds :data:`MAX_PARAMETERS`."""
    with torch.device("meta"):
        probe = registry.create(kind, name, **kwargs)
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise SizeError(
            f"{kind} {name} would have {count:,} parameters, more than the {MAX_PARAMETERS:,} "
            "ganzoo builds; reduce its widths or depth"
        )
    return registry.create(kind, name, **kwargs)


def _params_with_image_size(section: ComponentSection, recipe: Recipe) -> dict[str, Any]:
    """The section's params, with ``image_size`` filled from the crop size where taken."""
    params = section.params
    accepted = {p.name for p in registry.get(section.kind, section.name).parameters()}
    if "image_size" in accepted and "image_size" not in params:
        h, w = recipe.data.image_size
        params["image_size"] = h if h == w else (h, w)
    return params


def build_generator(recipe: Recipe) -> nn.Module:
    """G(in_channels -> out_channels) for the recipe, checked against the crop size."""
    data = recipe.data
    net = _create(
        "generator",
        recipe.generator.name,
        in_channels=data.in_channels,
        out_channels=data.out_channels,
        **_params_with_image_size(recipe.generator, recipe),
    )
    check_image_size(net, f"generator {recipe.generator.name}", *data.image_size)
    return net


def build_discriminator(recipe: Recipe) -> nn.Module:
    """D over (condition, image) concatenated: in_channels + out_channels input channels."""
    data = recipe.data
    net = _create(
        "discriminator",
        recipe.discriminator.name,
        in_channels=data.in_channels + data.out_channels,
        **_params_with_image_size(recipe.discriminator, recipe),
    )
    check_image_size(net, f"discriminator {recipe.discriminator.name}", *data.image_size)
    return net


def build_objective(recipe: Recipe) -> Any:
    """The GAN objective named by ``loss.objective``."""
    spec = recipe.loss.objective
    return registry.create("objective", spec.name, **spec.params)


def check_recipe(recipe: Recipe) -> None:
    """Build G and D on the meta device (no memory, no compute) so that sizes and attention
    placements are refused now, with one line, not deep inside a forward pass."""
    with torch.device("meta"):
        build_generator(recipe)
        build_discriminator(recipe)
    build_objective(recipe)
