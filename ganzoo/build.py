"""Recipe -> components: the only place that turns recipe sections into modules."""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from ganzoo import registry
from ganzoo.errors import RecipeError, SizeError
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
    placements, parameter counts and ``optim.train_only`` globs are refused now, with one
    line, not deep inside a forward pass."""
    g = _build(recipe, "generator", probe_only=True)
    d = _build(recipe, "discriminator", probe_only=True)
    check_train_only(recipe, g, d)
    build_objective(recipe)


def _names(net: nn.Module) -> list[str]:
    """Parameter names of ``net``, each also in its spectral-norm form (the meta probes are
    built without spectral norm; the trained network names ``x.weight`` as
    ``x.parametrizations.weight.original``)."""
    names = []
    for name, _ in net.named_parameters():
        names.append(name)
        head, dot, leaf = name.rpartition(".")
        names.append(f"{head}{dot}parametrizations.{leaf}.original")
    return names


def check_train_only(recipe: Recipe, generator: nn.Module, discriminator: nn.Module) -> None:
    """A one-line RecipeError for an ``optim.train_only`` glob that matches no parameter of its
    network (which would train nothing, and fail in the first backward pass)."""
    only = recipe.optim.train_only
    if only is None:
        return
    for kind, net, patterns in (
        ("generator", generator, only.generator),
        ("discriminator", discriminator, only.discriminator),
    ):
        names = _names(net)
        for pattern in patterns or []:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                tops = sorted({n.split(".")[0] for n in names})
                raise RecipeError(
                    f"optim.train_only.{kind}: {pattern!r} matches no parameter of "
                    f"{kind} {getattr(recipe, kind).name} (its top-level names: "
                    f"{', '.join(tops[:12])}{', ...' if len(tops) > 12 else ''}); use globs "
                    "over its state-dict names, null for all or [] for none"
                )
