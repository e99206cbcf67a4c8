"""Recipe -> components: the only place that turns recipe sections into modules, and the one
that finishes every network.

A generator or discriminator declares its architecture only: its layers, the sizes it takes
(``size_divisor``, ``min_side``), where attention may go (it takes ready
:class:`~ganzoo.nn.AttentionSlots` as ``attention``) and, optionally, which modules take
spectral norm (``spectral_norm_modules(mode)``; default: all of it). The builder takes the
finishing settings out of its parameters (``init``, ``init_gain``, spectral norm, ``attention``
specs and ``image_size``; defaults from the entry's :class:`~ganzoo.registry.Finish`), builds
it, then initialises its weights, then applies spectral norm (the order ganzoo has always
drawn them in, so a seed gives the same weights), and :func:`build_generator` /
:func:`build_discriminator` check the crop size against its declared sizes.
"""

from __future__ import annotations

import fnmatch
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

import pydantic
import torch
from torch import nn

from ganzoo import registry
from ganzoo.errors import RecipeError, SizeError
from ganzoo.losses.terms import NEEDS, Terms
from ganzoo.nn.attention_slots import AttentionSlots, AttentionSpec
from ganzoo.nn.init import InitName, init_weights
from ganzoo.nn.sizes import check_image_size
from ganzoo.nn.spectral import apply_spectral_norm
from ganzoo.params import Param, signature_params
from ganzoo.recipe import ComponentSection, Recipe
from ganzoo.registry import Entry

ImageSize = int | tuple[int, int]


def _check_attention_blocks(specs: list[AttentionSpec] | None) -> list[AttentionSpec] | None:
    """Each spec's block parameters checked against that block (one-line error)."""
    for spec in specs or []:
        registry.validate_params("attention", spec.block, spec.params, where=spec.block)
    return specs


#: The ``attention`` setting of a network that takes attention slots.
AttentionSpecs = Annotated[
    list[AttentionSpec] | None, pydantic.AfterValidator(_check_attention_blocks)
]


def make_attention_block(spec: AttentionSpec, channels: int) -> nn.Module:
    """The attention block ``spec`` names, on ``channels`` channels."""
    return registry.create("attention", spec.block, channels, **spec.params)


class NetworkFinisher:
    """Finishes generators and discriminators (installed in :data:`registry.FINISHERS`)."""

    def parameters(self, entry: Entry, own: list[Param]) -> list[Param]:
        """``own`` (the network's architecture) and the finishing settings, with the entry's
        defaults; ``attention`` and ``image_size`` where the network takes attention slots. A
        setting the network declares itself stays its own (a plugin that finishes itself)."""
        finish = entry.finishing
        names = {p.name for p in own}
        spectral: Any = bool
        if finish.spectral_modes:
            spectral = bool | Literal[finish.spectral_modes]  # type: ignore[valid-type]
        extra = [
            Param(finish.spectral_key, spectral, finish.spectral_norm),
            Param("init", InitName, finish.init),
            Param("init_gain", float, finish.init_gain),
        ]
        if "zero_bias" in finish.options:
            extra.append(Param("zero_bias", bool, finish.zero_bias))
        slots = takes_slots(own)
        if slots:
            extra.append(Param("attention", AttentionSpecs, None))
            extra.append(Param("image_size", ImageSize, 256))
        kept = [p for p in own if not (slots and p.name == "attention")]
        return kept + [p for p in extra if p.name not in names or p.name == "attention"]

    def create(
        self, entry: Entry, builder: Callable[..., Any], args: tuple, params: dict[str, Any]
    ) -> Any:
        """Build ``entry`` from its architecture parameters, then finish it."""
        finish = entry.finishing
        own = {p.name: p for p in signature_params(builder)}
        taken = {k: params.pop(k) for k in FINISHING if k in params and k not in own}
        spectral = taken.get(finish.spectral_key, finish.spectral_norm)
        if takes_slots(list(own.values())):
            specs = params.pop("attention", None)
            if "image_size" in own:
                size = params.get("image_size", own["image_size"].default)
            else:
                size = taken.get("image_size", 256)
            params["attention"] = AttentionSlots(specs, size, make_attention_block)
        net = builder(*args, **params)
        if isinstance(net, nn.Module):
            finish_network(
                net,
                taken.get("init", finish.init),
                taken.get("init_gain", finish.init_gain),
                taken.get("zero_bias", finish.zero_bias),
                False if finish.spectral_key in own else spectral,
                initialise="init" not in own,
            )
        return net


#: The settings the builder takes out of a network's parameters (unless the network declares
#: one itself).
FINISHING = ("spectral_norm", "spectral", "init", "init_gain", "zero_bias", "image_size")


def takes_slots(own: list[Param]) -> bool:
    """Whether a network's ``attention`` parameter takes ready :class:`AttentionSlots`."""
    found = [p.annotation for p in own if p.name == "attention"]
    return bool(found) and AttentionSlots in (found[0], *typing.get_args(found[0]))


def finish_network(
    net: nn.Module,
    init: InitName,
    gain: float,
    zero_bias: bool,
    spectral: bool | str,
    *,
    initialise: bool = True,
) -> None:
    """Initialise ``net``'s weights (unless not ``initialise``; only the modules it names in
    ``init_modules()`` when it has that, e.g. the heads on a frozen pretrained network), then
    wrap the modules it names for ``spectral`` (all of it unless it has
    ``spectral_norm_modules``) in spectral norm."""
    if initialise:
        chosen = getattr(net, "init_modules", None)
        for module in chosen() if chosen is not None else [net]:
            init_weights(module, init, gain, zero_bias)
    if not spectral:
        return
    declared = getattr(net, "spectral_norm_modules", None)
    for module in declared(spectral) if declared is not None else [net]:
        apply_spectral_norm(module)


registry.FINISHERS["generator"] = registry.FINISHERS["discriminator"] = NetworkFinisher()

#: The most parameters a generator or discriminator may have (8 GiB of float32 weights): a
#: recipe, or one read from a downloaded file, cannot make ganzoo allocate more.
MAX_PARAMETERS = 2**31


def _probe(kind: str, name: str, **kwargs: Any) -> nn.Module:
    """The network built on the meta device (no memory, no RNG draws) without spectral norm
    (which keeps the parameter count, and whose power iterations are slow on meta); a
    one-line SizeError when it has more than :data:`MAX_PARAMETERS` parameters."""
    entry = registry.get(kind, name)
    key = entry.finishing.spectral_key
    if key in {p.name for p in entry.parameters()}:
        kwargs = {**kwargs, key: False}
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


def build_terms(recipe: Recipe, discriminator: nn.Module) -> Terms:
    """The step's terms: ``loss.regularizers`` in order, then those the discriminator declares
    through a ``terms(recipe)`` method. A term that needs the label map in a recipe without
    ``data.labels`` is refused in one line."""
    made = [
        (registry.create("regularizer", s.name, **s.params), f"loss.regularizers: {s.name}")
        for s in recipe.loss.regularizers
    ]
    declare = getattr(discriminator, "terms", None)
    if callable(declare):
        made += [(term, f"discriminator {recipe.discriminator.name}") for term in declare(recipe)]
    for term, source in made:
        unknown = term.needs - NEEDS
        if unknown:
            raise RecipeError(
                f"{source}: needs {sorted(unknown)}, a step term may need {sorted(NEEDS)}"
            )
        if "labels" in term.needs and recipe.data.labels is None:
            raise RecipeError(
                f"{source} needs label maps: add data.labels (num_classes: ...) to the recipe, "
                "or choose a component that works on images"
            )
    terms = Terms([term for term, _ in made])
    terms.bind(recipe)
    return terms


def check_recipe(recipe: Recipe) -> Terms:
    """Build G and D on the meta device (no memory, no compute) so that sizes, attention
    placements, parameter counts and ``optim.train_only`` globs are refused now, with one
    line, not deep inside a forward pass. Returns the step's terms (what ``show`` / ``check``
    list as active)."""
    g = _build(recipe, "generator", probe_only=True)
    d = _build(recipe, "discriminator", probe_only=True)
    check_train_only(recipe, g, d)
    build_objective(recipe)
    return build_terms(recipe, d)


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
