"""One training iteration, in the pix2pix reference order.

1. G translates the condition: ``fake = G(A)``.
2. ``optim.d_steps`` discriminator updates: the (condition, fake) pair, through the image pool
   when ``optim.pool_size`` > 0 (the pool keeps whole pairs, as pix2pix's
   ``fake_AB_pool.query(cat(A, fake))`` and pix2pixHD's ``fake_pool.query(cat(label, fake))``),
   goes through D first, then the real pair (the order matters for BatchNorm running
   statistics only); D minimises ``objective.d_scale * (real + fake)`` plus any gradient
   penalty, the branch terms combined by D's ``branch_reduction``.
3. One generator update, D frozen: GAN + l1 * L1 + feature_matching * FM + perceptual * VGG +
   style * Gram.

The losses come back detached (no host synchronisation): ``d`` (what D minimised), ``d_real``,
``d_fake`` (the objective's unscaled terms, pix2pix's ``D_real`` / ``D_fake``), ``g_gan``,
``g_l1`` (unweighted) and, where used, ``d_penalty``, ``g_fm``, ``g_vgg``, ``g_style``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo import losses
from ganzoo.build import build_objective
from ganzoo.recipe import Recipe
from ganzoo.training.state import TrainState

Outputs = list[list[torch.Tensor]]


def _float(outputs: Outputs) -> Outputs:
    return [[f.float() for f in branch] for branch in outputs]


class UpdateStep:
    """``step(batch) -> losses``: one G update with its D updates on ``state``'s networks."""

    def __init__(self, recipe: Recipe, state: TrainState, amp_dtype: torch.dtype | None) -> None:
        self.recipe = recipe
        self.state = state
        self.amp_dtype = amp_dtype
        self.objective = build_objective(recipe)
        self.reduction = losses.branch_reduction(state.d_module)
        rl = recipe.loss
        self.perceptual = (
            losses.PerceptualLoss(rl.perceptual_input).to(state.device)
            if rl.perceptual > 0
            else None
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.state.device.type, dtype=self.amp_dtype)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        s = self.state
        return x.to(s.device, non_blocking=True).contiguous(memory_format=s.memory_format)

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        s, rl = self.state, self.recipe.loss
        real_a, real_b = self.to_device(batch["A"]), self.to_device(batch["B"])
        with self.autocast():
            fake_b = s.G(real_a)
        real_pair = torch.cat([real_a, real_b], 1)
        out: dict[str, torch.Tensor] = {}
        if s.d_trains():
            out.update(self._update_d(real_pair, torch.cat([real_a, fake_b.detach()], 1)))

        # G update: D frozen, called unwrapped (no DDP sync for a module not being updated).
        s.d_module.requires_grad_(False)
        s.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            fake_out = s.d_for_g(torch.cat([real_a, fake_b], 1))
            real_feats = None
            if rl.feature_matching > 0 or rl.style > 0:
                with torch.no_grad():
                    real_feats = s.d_for_g(real_pair)
        fake_out = _float(fake_out)
        loss_g_gan = losses.generator_gan_loss(self.objective, fake_out, self.reduction)
        loss_g = loss_g_gan
        out["g_gan"] = loss_g_gan.detach()
        if rl.l1 > 0:
            loss_l1 = F.l1_loss(fake_b.float(), real_b.float())
            loss_g = loss_g + loss_l1 * rl.l1
            out["g_l1"] = loss_l1.detach()
        if real_feats is not None:
            real_feats = _float(real_feats)
            if rl.feature_matching > 0:
                loss_fm = losses.feature_matching_loss(
                    real_feats, fake_out, rl.feature_matching_form
                )
                loss_g = loss_g + rl.feature_matching * loss_fm
                out["g_fm"] = loss_fm.detach()
            if rl.style > 0:
                loss_style = losses.style_loss(real_feats, fake_out)
                loss_g = loss_g + rl.style * loss_style
                out["g_style"] = loss_style.detach()
        if self.perceptual is not None:
            loss_vgg = self.perceptual(fake_b.float(), real_b.float())
            loss_g = loss_g + rl.perceptual * loss_vgg
            out["g_vgg"] = loss_vgg.detach()
        s.scaler_g.scale(loss_g).backward()
        s.scaler_g.step(s.opt_g)
        s.scaler_g.update()
        if s.ema is not None:
            s.ema.update_parameters(s.g_module)
        return out

    def _update_d(
        self, real_pair: torch.Tensor, fake_pair: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``optim.d_steps`` D updates on a pooled fake pair (fake first, then real)."""
        s = self.state
        s.trainable_d()
        fake_pair = s.pool.query(fake_pair)
        out: dict[str, torch.Tensor] = {}
        for _ in range(self.recipe.optim.d_steps):
            s.opt_d.zero_grad(set_to_none=True)
            with self.autocast():
                fake_out = s.D(fake_pair)
                real_out = s.D(real_pair)
            real, fake = losses.discriminator_terms(
                self.objective, _float(real_out), _float(fake_out), self.reduction
            )
            loss_d = (fake + real) * self.objective.d_scale
            if self.objective.needs_penalty:
                penalty = self.objective.penalty(s.D, real_pair, fake_pair)
                loss_d = loss_d + penalty
                out["d_penalty"] = penalty.detach()
            s.scaler_d.scale(loss_d).backward()
            s.scaler_d.step(s.opt_d)
            s.scaler_d.update()
        out.update(d=loss_d.detach(), d_real=real.detach(), d_fake=fake.detach())
        return out
