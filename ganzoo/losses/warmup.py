"""A discriminator's adversarial warm-up: its GAN terms count only from a given step on.

Vision-aided GAN (Kumari et al., CVPR 2022; nupurkmr9/vision-aided-gan
``stylegan2/training/loss.py``) multiplies the vision-aided D's loss, and G's loss from it, by
0 until ``warmup`` images have been seen. A discriminator with a warm-up declares this term;
it stands in for the objective (``replaces_objective``) and returns the objective's own terms
times 0 before ``steps`` and times 1 from it on: D's optimizer steps on zero gradients (with
Adam from fresh moments, no move), G trains on its other losses alone.
"""

from __future__ import annotations

from torch import Tensor

from ganzoo.losses.objectives import Reduction, discriminator_terms, generator_gan_loss
from ganzoo.losses.terms import DView, GView, Term


class AdversarialWarmup(Term):
    """The objective's D and G terms, multiplied by 0 before step ``steps`` (0-based)."""

    replaces_objective = True

    def __init__(self, steps: int, reduction: Reduction = "mean") -> None:
        self.steps, self.reduction = int(steps), reduction

    def factor(self, step: int) -> float:
        """0.0 during the warm-up, 1.0 from step ``steps`` on."""
        return 0.0 if step < self.steps else 1.0

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        real, fake = discriminator_terms(
            view.objective, view.real_out, view.fake_out, self.reduction
        )
        scale = view.objective.d_scale * self.factor(view.step)
        return {"real": scale * real, "fake": scale * fake}

    def g_loss(self, view: GView) -> dict[str, Tensor]:
        gan = generator_gan_loss(view.objective, view.fake_out, self.reduction)
        return {"gan": self.factor(view.step) * gan}

    def describe(self) -> str:
        return f"adversarial warm-up: D's GAN terms count from step {self.steps}"

    def __repr__(self) -> str:
        return f"AdversarialWarmup(steps={self.steps})"
