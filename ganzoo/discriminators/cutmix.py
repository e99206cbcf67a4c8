"""CutMix consistency regularisation of a discriminator with a per-pixel (decoder) branch and a
per-image (encoder) branch: the U-Net GAN's step term (Schönfeld et al., CVPR 2020).

In a CutMix round, each real pair ``x`` and fake pair ``G(z)`` of the batch are mixed through a
box mask ``M`` (1: the real pair's pixel, 0: the fake's), the same mask on the condition and
the image channels, so the mixed input is a pair of patches that each keep their condition::

    x~ = M * x + (1 - M) * G(z)

and D is trained on it with

- the decoder's per-pixel target ``M`` (the objective's real loss on the real pixels and its
  fake loss on the fake ones, averaged over all pixels);
- the encoder's per-image target "fake" (a mixed image is globally fake, or G would learn to
  produce cut-and-paste artefacts), weighted by the warm-up coefficient;
- the consistency ``lambda * mean((D_dec(x~) - (M * D_dec(x) + (1 - M) * D_dec(G(z))))^2)`` on
  the decoder's logits, weighted by the warm-up coefficient too.

G gets no CutMix term (the authors' G update never mixes). Two schedules, the authors' two
training scripts (boschresearch/unetgan ``train_fns.py`` / ``train.py``):

- ``replace`` (``--full_batch_mixup --slow_mixup``, their FFHQ script and the paper): each D
  update is a CutMix round with probability ``p(step) = prob * min(1, step / warmup)``, and in
  such a round the CutMix loss is D's whole GAN loss (the objective's real / fake terms are not
  computed). The term then supplies the objective's terms itself (``replaces_objective``).
- ``add`` (no ``--full_batch_mixup``, their CelebA script): every D update adds the CutMix
  terms to the objective's, the encoder term and the consistency weighted by
  ``min(1, step / warmup)``.

The masks are the authors' ``CutMix``: ``lambda ~ U(0, 1)``, a box of sides
``int(side * sqrt(1 - lambda))`` centred at a uniform pixel and clipped to the image, zeros in
the box, the mask inverted with probability 0.5; drawn from the term's own generator (seeded
from the recipe, saved for resume) so the rest of the step draws the same numbers with CutMix
on or off.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.objectives import Objective, discriminator_terms, generator_gan_loss
from ganzoo.losses.terms import DView, GView, Term

CutMixMode = Literal["replace", "add"]


def cutmix_masks(
    batch: int, height: int, width: int, generator: torch.Generator | None = None
) -> Tensor:
    """``(batch, 1, height, width)`` float masks in {0, 1}, one box each (1 = real pixel)."""
    masks = torch.ones(batch, 1, height, width)
    draws = torch.rand(batch, 4, generator=generator)  # lambda, centre row, centre col, flip
    for i in range(batch):
        lam, cy, cx, flip = draws[i].tolist()
        r = (1.0 - lam) ** 0.5
        bh, bw = int(height * r), int(width * r)
        y, x = min(int(cy * height), height - 1), min(int(cx * width), width - 1)
        top, bottom = max(y - bh // 2, 0), min(y + bh // 2, height)
        left, right = max(x - bw // 2, 0), min(x + bw // 2, width)
        masks[i, :, top:bottom, left:right] = 0.0
        if flip > 0.5:
            masks[i] = 1.0 - masks[i]
    return masks


def mixed_pixel_loss(objective: Objective, logits: Tensor, mask: Tensor) -> Tensor:
    """Per-pixel loss of ``(N, 1, H, W)`` logits against ``mask`` (1 real, 0 fake): the
    objective's real loss on real pixels and fake loss on fake ones, averaged over all pixels
    (``BCE(logits, mask)`` for the vanilla objective)."""
    logits, real = logits.float(), mask.expand_as(logits) > 0.5
    total = logits.new_zeros(())
    n_real = int(real.sum())
    if n_real:
        total = total + objective.real_loss(logits[real]) * n_real
    if n_real < logits.numel():
        total = total + objective.fake_loss(logits[~real]) * (logits.numel() - n_real)
    return total / logits.numel()


def consistency_loss(mixed: Tensor, real: Tensor, fake: Tensor, mask: Tensor) -> Tensor:
    """``mean((mixed - (mask * real + (1 - mask) * fake))^2)`` over ``(N, 1, H, W)`` logits."""
    target = mask * real.float() + (1 - mask) * fake.float()
    return F.mse_loss(mixed.float(), target)


class CutMixTerm(Term):
    """The U-Net GAN's CutMix augmentation and consistency losses (see the module docs).

    ``encoder`` / ``decoder``: the indices of D's per-image and per-pixel branches;
    ``reduction``: how D combines its branches (for the objective's terms in ``replace``
    mode). Adds ``d_cutmix`` (decoder + encoder terms) and ``d_consistency``.
    """

    def __init__(
        self,
        *,
        mode: CutMixMode = "replace",
        prob: float = 0.5,
        warmup: int = 0,
        consistency: float = 1.0,
        encoder: int = 0,
        decoder: int = 1,
        reduction: Literal["mean", "sum"] = "sum",
        seed: int = 0,
    ) -> None:
        self.mode, self.prob, self.warmup = mode, float(prob), int(warmup)
        self.consistency = float(consistency)
        self.encoder, self.decoder, self.reduction = encoder, decoder, reduction
        self.replaces_objective = mode == "replace"
        self.generator = torch.Generator().manual_seed(int(seed))

    def ramp(self, step: int) -> float:
        """The warm-up factor at ``step``: ``min(1, step / warmup)`` (1 without warm-up)."""
        return 1.0 if self.warmup <= 0 else min(1.0, step / self.warmup)

    def probability(self, step: int) -> float:
        """The chance that the D update at ``step`` is a CutMix round."""
        return self.prob * self.ramp(step) if self.mode == "replace" else 1.0

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        device = view.real_pairs.device
        zero = torch.zeros((), device=device)
        out: dict[str, Tensor] = {}
        mixing = float(torch.rand((), generator=self.generator)) < self.probability(view.step)
        if self.replaces_objective:
            if mixing:
                out.update(real=zero, fake=zero)
            else:
                real, fake = discriminator_terms(
                    view.objective, view.real_out, view.fake_out, self.reduction
                )
                scale = view.objective.d_scale
                out.update(real=scale * real, fake=scale * fake)
        if not mixing:
            return {**out, "cutmix": zero, "consistency": zero}
        n, _, h, w = view.real_pairs.shape
        mask = cutmix_masks(n, h, w, self.generator).to(device)
        pairs = mask.to(view.real_pairs.dtype) * view.real_pairs + (1 - mask) * view.fake_pairs
        with view.autocast():
            mixed_out = view.discriminator(pairs)
        mixed_dec = mixed_out[self.decoder][-1].float()
        mixed_enc = mixed_out[self.encoder][-1].float()
        ramp = 1.0 if self.mode == "replace" else self.ramp(view.step)
        cutmix = mixed_pixel_loss(view.objective, mixed_dec, mask)
        cutmix = cutmix + ramp * view.objective.fake_loss(mixed_enc)
        cons = consistency_loss(
            mixed_dec, view.real_out[self.decoder][-1], view.fake_out[self.decoder][-1], mask
        )
        return {**out, "cutmix": cutmix, "consistency": ramp * self.consistency * cons}

    def g_loss(self, view: GView) -> dict[str, Tensor]:
        if not self.replaces_objective:
            return {}
        return {"gan": generator_gan_loss(view.objective, view.fake_out, self.reduction)}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def describe(self) -> str:
        return (
            f"CutMix ({self.mode}): p {self.prob} after {self.warmup} warm-up steps, "
            f"consistency {self.consistency}"
        )

    def __repr__(self) -> str:
        return (
            f"CutMixTerm(mode={self.mode!r}, prob={self.prob}, warmup={self.warmup}, "
            f"consistency={self.consistency})"
        )
