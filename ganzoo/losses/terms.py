"""Extra pieces of a training step: augmentations of D's inputs and loss terms added to D or G.

A :class:`Term` comes from one of two places, used in this order:

1. the recipe's ``loss.regularizers`` (registry kind ``regularizer``: DiffAugment, ADA, R1/R2,
   LeCam, ...), composable with every objective and discriminator;
2. the discriminator itself: a D module with a ``terms(recipe) -> list[Term]`` method declares
   what it needs beyond the objective (the U-Net discriminator's CutMix consistency, OASIS'
   class-balanced cross-entropy). The trainer never asks a component for its name.

In every step the trainer asks each term, in order:

- :meth:`Term.augment` on every input of D (real and fake pairs, in the D and the G update):
  ``(N, C_A + C_B, H, W)`` condition channels then image channels, so one geometric transform
  of the whole tensor moves the condition and the image of a pair together; it must be
  differentiable (G's gradient flows through it).
- :meth:`Term.d_loss` after D's forward passes: extra D loss terms, already weighted, name ->
  float32 scalar, each logged as ``d_<name>``; :meth:`Term.after_d_step` after D's update.
- :meth:`Term.g_loss` after D's forward pass on the fake pair in the G update: extra G terms,
  logged as ``g_<name>``.

A term that ``replaces_objective`` supplies D's and G's adversarial loss itself (OASIS: D is
a per-pixel classifier of N+1 classes): the objective's terms are then not computed. A term
with ``"labels"`` in ``needs`` is given the one-hot class map of the batch (``(N, K, H, W)``,
K the classes plus the don't-care channel, from a ``data.labels`` recipe); selecting it in a
recipe without labels is refused in one line. Terms that keep state across steps (ADA's p,
LeCam's anchors) return it from :meth:`Term.state_dict`: it is saved in every checkpoint under
``"terms"``, so a resumed run continues exactly.

Before the first step the builder calls :meth:`Term.bind` with the recipe, once: a term takes
what it needs of it there (the channel split of D's inputs: ``data.in_channels`` condition
channels, then the image's), so its constructor keeps only its own recipe parameters. A term
that measures something that is not a loss (ADA's augmentation probability) returns it from
:meth:`Term.diagnostics` after each D update; it is logged unprefixed, under a name listed in
:data:`ganzoo.records.DIAGNOSTICS`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ganzoo.errors import RegistryError
from ganzoo.losses.objectives import DiscriminatorOutput, Objective

#: What a term may ask the step for.
NEEDS = frozenset({"labels"})
#: Checkpoint key of the terms' states.
CHECKPOINT_KEY = "terms"


@dataclass
class StepView:
    """What every term sees of an update: the step (0-based), D (called under
    ``autocast()``), the objective, and D's real and fake inputs after augmentation."""

    step: int
    discriminator: Callable[[Tensor], DiscriminatorOutput]
    autocast: Callable[[], contextlib.AbstractContextManager]
    objective: Objective
    real_pairs: Tensor
    fake_pairs: Tensor


@dataclass
class DView(StepView):
    """One D update: ``discriminator`` is D as trained, the fake pairs are detached (and
    pooled), the outputs float32."""

    real_out: DiscriminatorOutput
    fake_out: DiscriminatorOutput
    labels: Tensor | None = None


@dataclass
class GView(StepView):
    """The G update: D frozen, ``fake_pairs`` carry G's gradient, ``fake_out`` is D's float32
    output on them; ``fake_b`` is G's output."""

    fake_out: DiscriminatorOutput
    fake_b: Tensor
    labels: Tensor | None = None


class Term:
    """Base class of step terms: every hook does nothing until overridden."""

    #: What the term needs from the batch beyond the pairs (a subset of :data:`NEEDS`).
    needs: frozenset[str] = frozenset()
    #: True where :meth:`d_loss` / :meth:`g_loss` stand in for the objective's GAN terms.
    replaces_objective: bool = False

    def bind(self, recipe: Any) -> None:
        """Called once by the builder with the :class:`~ganzoo.recipe.Recipe`, before any step."""

    def augment(self, pairs: Tensor, step: int) -> Tensor:
        """``(N, C, H, W)`` -> same shape: D's input, differentiably transformed."""
        return pairs

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        """Extra weighted D loss terms: name -> float32 scalar."""
        return {}

    def after_d_step(self, view: DView) -> None:
        """Called once per D update, after the optimizer step (statistics, EMAs)."""

    def g_loss(self, view: GView) -> dict[str, Tensor]:
        """Extra weighted G loss terms: name -> float32 scalar."""
        return {}

    def diagnostics(self) -> dict[str, Tensor]:
        """Values logged after each D update that are not losses: name -> detached scalar."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume (plain data and tensors)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def describe(self) -> str:
        """One line for ``ganzoo show`` / ``check``."""
        return repr(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Terms:
    """The step's terms in order, with their combined hooks and checkpoint state."""

    def __init__(self, terms: Sequence[Term]) -> None:
        self.items = list(terms)
        self.replacing = [t for t in self.items if t.replaces_objective]
        if len(self.replacing) > 1:
            names = ", ".join(type(t).__name__ for t in self.replacing)
            raise RegistryError(f"only one term may replace the objective, got {names}")

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(t.needs for t in self.items))

    def bind(self, recipe: Any) -> None:
        for term in self.items:
            term.bind(recipe)

    def augment(self, pairs: Tensor, step: int) -> Tensor:
        for term in self.items:
            pairs = term.augment(pairs, step)
        return pairs

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        return _merged(term.d_loss(view) for term in self.items)

    def after_d_step(self, view: DView) -> None:
        for term in self.items:
            term.after_d_step(view)

    def g_loss(self, view: GView) -> dict[str, Tensor]:
        return _merged(term.g_loss(view) for term in self.items)

    def diagnostics(self) -> dict[str, Tensor]:
        return _merged(term.diagnostics() for term in self.items)

    def describe(self) -> list[str]:
        """One line per term, in order (``ganzoo show`` / ``check``)."""
        return [term.describe() for term in self.items]

    def state_dict(self) -> list[dict[str, Any]]:
        return [{"term": type(t).__name__, "state": t.state_dict()} for t in self.items]

    def load_state_dict(self, states: list[dict[str, Any]]) -> None:
        """Restore the states saved by :meth:`state_dict`; a term the checkpoint lacks (the
        recipe gained it on resume) starts fresh."""
        for term, saved in zip(self.items, states or []):
            if saved.get("term") == type(term).__name__:
                term.load_state_dict(saved.get("state") or {})

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self):  # noqa: ANN204 - iterator of Term
        return iter(self.items)


def _merged(parts) -> dict[str, Tensor]:  # noqa: ANN001 - iterable of dicts
    out: dict[str, Tensor] = {}
    for part in parts:
        for name, value in part.items():
            if name in out:
                raise RegistryError(f"two step terms both report a value named {name!r}")
            out[name] = value
    return out
