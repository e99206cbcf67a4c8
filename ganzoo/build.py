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


def _probe(kind: str, name: str, **kwargs: Any) -> nn.Module:
    """The network built on the meta device (no memory, no RNG draws) without spectral norm
    (which keeps the parameter count, and whose power iterations are slow on meta); a
    one-line SizeError when it has more than :data:`MAX_PARAMETERS` parameters."""
    accepted = {p.name for p in registry.get(kind, name).parameters()}
    if "spectral_norm" in accepted:
        kwargs = {**kwargs, "spectral_norm": False}
    with torch.device("meta"):
        probe = registry.create(kind, name, **kwargs)
    count = sum(p.numel() for p in probe.parameters())
    if count > MAX_PARAMETERS:
        raise SizeError(
            f"{kind} {name} would have {count:,} parameters, more than the {MAX_PARAMETERS:,} "
            "ganzoo builds; reduce its widths or depth"
        )
    return probe


def _params_with_image_size(section: ComponentSection, recipe: Recipe) -> dict[str, Any]:
    """The section's params, with ``image_size`` filled from the crop size where taken."""
    params = section.params
    accepted = {p.name for p in registry.get(section.kind, section.name).parameters()}
    if "image_size" in accepted and "image_size" not in params:
        h, w = recipe.data.image_size
        params["image_size"] = h if h == w else (h, w)
    return params


def _arguments(recipe: Recipe, kind: str) -> tuple[str, dict[str, Any]]:
    data = recipe.data
    if kind == "generator":
        section: ComponentSection = recipe.generator
        channels = {"in_channels": data.in_channels, "out_channels": data.out_channels}
    else:
        section = recipe.discriminator
        channels = {"in_channels": data.in_channels + data.out_channels}
    return section.name, {**channels, **_params_with_image_size(section, recipe)}


def _build(recipe: Recipe, kind: str, probe_only: bool = False) -> nn.Module:
    """Probe the size, then build (unless ``probe_only``) and check the crop size."""
    name, kwargs = _arguments(recipe, kind)
    net = _probe(kind, name, **kwargs)
    if not probe_only:
        net = registry.create(kind, name, **kwargs)
    check_image_size(net, f"{kind} {name}", *recipe.data.image_size)
    return net


def build_generator(recipe: Recipe) -> nn.Module:
    """G(in_channels -> out_channels) for the recipe, checked against the crop size."""
    return _build(recipe, "generator")


def build_discriminator(recipe: Recipe) -> nn.Module:
    """D over (condition, image) concatenated: in_channels + out_channels input channels."""
    return _build(recipe, "discriminator")


def build_objective(recipe: Recipe) -> Any:
    """The GAN objective named by ``loss.objective``."""
    spec = recipe.loss.objective
    return registry.create("objective", spec.name, **spec.params)


def check_recipe(recipe: Recipe) -> None:
    """Build G and D on the meta device (no memory, no compute) so that sizes, attention
    placements and parameter counts are refused now, with one line, not deep inside a forward
    pass."""
    _build(recipe, "generator", probe_only=True)
    _build(recipe, "discriminator", probe_only=True)
    build_objective(recipe)
