"""What every generator family shares: attention placement, the conditioned layer sequence,
and fixed-depth variants of a builder (init and spectral norm are the builder's:
:mod:`ganzoo.build`)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ganzoo.nn import AttentionSlots
from ganzoo.registry import Finish, register

#: Which path of an encoder-decoder takes an attention block at a resolution both produce.
AttentionPath = Literal["decoder", "encoder"]


class Conditioned(nn.Module):
    """A layer called as ``layer(x, condition)``; ``condition`` is the generator's input image."""


class Attend(Conditioned):
    """An attention block inside a layer sequence: ``block(x, condition)``, shape kept."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.block(x, condition)


class LayerSequence(nn.Sequential):
    """``nn.Sequential`` that hands the condition image to its :class:`Conditioned` layers.

    Without attention it holds exactly the layers (and state-dict keys) of a plain Sequential.
    """

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        for layer in self:
            x = layer(x, condition) if isinstance(layer, Conditioned) else layer(x)
        return x


@dataclass(frozen=True)
class Site:
    """A place for attention: after the layer whose output is ``height / scale`` high."""

    path: AttentionPath
    scale: int
    channels: int


def place_attention(
    slots: AttentionSlots | None, sites: list[Site], prefer: AttentionPath, network: str
) -> list[Attend | None]:
    """The attention block (or None) for each of ``sites``, in the same order.

    Sites on the ``prefer`` path are offered first, so a resolution that both paths produce
    gets its block on that path; a resolution produced by no site raises a one-line
    :class:`~ganzoo.errors.RegistryError` naming ``network`` (from
    :meth:`AttentionSlots.finish`). ``slots`` None: no attention.
    """
    slots = slots or AttentionSlots()
    placed: list[Attend | None] = [None] * len(sites)
    order = sorted(range(len(sites)), key=lambda i: sites[i].path != prefer)
    for i in order:
        block = slots.at(sites[i].scale, sites[i].channels)
        if block is not None:
            placed[i] = Attend(block)
    slots.finish(network)
    return placed


def with_attention(layers: list[nn.Module], attention: Attend | None) -> list[nn.Module]:
    """``layers`` followed by ``attention`` when there is one."""
    return layers if attention is None else [*layers, attention]


def variant(builder: type, name: str, summary: str, **fixed: Any) -> Callable[..., nn.Module]:
    """A builder function for ``builder`` with some parameters fixed (``unet_256`` = ``unet``
    with ``num_downs=8``). Its signature and type hints are the class's minus the fixed ones,
    so the registry validates and documents it like any hand-written builder."""
    params = [
        p
        for p in inspect.signature(builder).parameters.values()
        if p.name not in fixed and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    hints = typing.get_type_hints(builder.__init__, include_extras=True)

    def build(*args: Any, **kwargs: Any) -> nn.Module:
        return builder(*args, **fixed, **kwargs)

    build.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    build.__annotations__ = {p.name: hints[p.name] for p in params if p.name in hints}
    build.__name__ = build.__qualname__ = name
    build.__module__ = builder.__module__
    build.__doc__ = f"{summary}\n\n{builder.__name__} with " + ", ".join(
        f"{k}={v!r}" for k, v in fixed.items()
    )
    return build


def register_variant(
    builder: type, name: str, summary: str, *, paper: str, **fixed: Any
) -> Callable[..., nn.Module]:
    """Register :func:`variant` of ``builder`` as generator ``name`` (finished as the family)."""
    return register("generator", name, paper=paper, finish=Finish())(
        variant(builder, name, summary, **fixed)
    )
