"""LeCam regularisation: D's outputs pulled towards moving anchors of its past outputs.

Tseng et al., Regularizing Generative Adversarial Networks under Limited Data, CVPR 2021
(arXiv:2104.03310); google/lecam-gan: ``lecam_reg`` in ``biggan_cifar/losses.py`` (commit
db6debc) and ``stylegan2/lecam_loss.py`` (commit eaf2bd4):

``R_LC = mean(relu(D(real) - a_fake)^2) + mean(relu(a_real - D(fake))^2)``

where ``a_real`` / ``a_fake`` are exponential moving averages (decay 0.99, as the paper and
the StyleGAN2 code; the BigGAN code's default is 0.9) of D's mean output on real and on
generated inputs, updated with the current batch before the term is computed and zero-debiased
as TensorFlow's ``assign_moving_average(zero_debias=True)`` in the StyleGAN2 code (the first
anchor is the first batch's mean). The BigGAN code's ``start_itr`` (anchors pinned to the
current batch, no term, for the first 1000 iterations) is not taken. D's loss gains
``weight * R_LC`` (0.3 in the authors' BigGAN CIFAR scripts). A discriminator with several
branches has one pair of anchors per branch; the branch terms are averaged. The anchors are
the term's state, saved in the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.errors import RegistryError
from ganzoo.losses.objectives import branch_logits
from ganzoo.losses.terms import DView, Term
from ganzoo.registry import register


@register(
    "regularizer",
    "lecam",
    paper="Tseng et al., Regularizing Generative Adversarial Networks under Limited Data, "
    "CVPR 2021 (arXiv:2104.03310)",
)
class LeCam(Term):
    """LeCam: D's outputs kept near moving anchors of its past outputs (D loss term).

    ``weight * (mean(relu(D(real) - a_fake)^2) + mean(relu(a_real - D(fake))^2))``, ``a``
    the zero-debiased EMAs (``decay``) of D's mean outputs, saved in the checkpoint."""

    def __init__(self, weight: float = 0.3, decay: float = 0.99) -> None:
        if not weight > 0 or not 0 <= decay < 1:
            raise RegistryError(
                f"lecam: weight must be > 0 and decay in [0, 1), got {weight} and {decay}"
            )
        self.weight, self.decay = float(weight), float(decay)
        #: biased EMAs of D's mean output per branch (real, fake): (2, branches); None: unseen
        self.ema: Tensor | None = None
        self.updates = 0

    def anchors(self) -> tuple[Tensor, Tensor]:
        """The zero-debiased anchors ``(a_real, a_fake)``, one per branch."""
        if self.ema is None:
            raise RuntimeError("lecam: no D output seen yet")
        ema = self.ema / (1 - self.decay**self.updates)
        return ema[0], ema[1]

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        real = [r.float() for r in branch_logits(view.real_out)]
        fake = [f.float() for f in branch_logits(view.fake_out)]
        means = torch.stack(
            [torch.stack([x.detach().mean() for x in side]) for side in (real, fake)]
        )
        previous = torch.zeros_like(means) if self.ema is None else self.ema.to(means.device)
        self.ema = self.decay * previous + (1 - self.decay) * means
        self.updates += 1
        a_real, a_fake = self.anchors()
        terms = [
            F.relu(r - af).square().mean() + F.relu(ar - f).square().mean()
            for r, f, ar, af in zip(real, fake, a_real, a_fake)
        ]
        return {"lecam": self.weight * torch.stack(terms).mean()}

    def state_dict(self) -> dict[str, Any]:
        return {"ema": None if self.ema is None else self.ema.cpu(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ema = state.get("ema")
        self.ema = None if ema is None else ema.clone()
        self.updates = int(state.get("updates", 0))

    def describe(self) -> str:
        return (
            f"lecam: weight {self.weight:g} * (relu(D(real) - a_fake)^2 + relu(a_real - "
            f"D(fake))^2), anchors EMA {self.decay:g}"
        )

    def __repr__(self) -> str:
        return f"LeCam(weight={self.weight}, decay={self.decay})"
