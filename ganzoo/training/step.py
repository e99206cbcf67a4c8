"""One training iteration, in the pix2pix reference order.

1. G translates the condition: ``fake = G(A)``.
2. ``optim.d_steps`` discriminator updates: the (condition, fake) pair, through the image pool
   when ``optim.pool_size`` > 0 (the pool keeps whole pairs, as pix2pix's
   ``fake_AB_pool.query(cat(A, fake))`` and pix2pixHD's ``fake_pool.query(cat(label, fake))``),
   goes through D first, then the real pair (the order matters for BatchNorm running
   statistics only); D minimises ``objective.d_scale * (real + fake)`` plus any gradient
   penalty, the branch terms combined by D's ``branch_reduction``.
3. One generator update, D frozen: GAN + l1 * L1 + feature_matching * FM + perceptual * VGG +
   style * Gram (computed and logged, but not applied, while ``optim.train_only.generator``
   is ``[]``).

The step's terms (:mod:`ganzoo.losses.terms`: ``loss.regularizers`` and what the
discriminator declares) augment every input of D and add ``d_<name>`` / ``g_<name>`` terms; a
term that replaces the objective returns D's ``real`` and ``fake`` terms and G's ``gan`` term.

The losses come back detached (no host synchronisation): ``d`` (what D minimised), ``d_real``,
``d_fake`` (the objective's unscaled terms, pix2pix's ``D_real`` / ``D_fake``), ``g_gan``,
``g_l1`` (unweighted) and, where used, ``d_penalty``, ``g_fm``, ``g_vgg``, ``g_style``; with them
the diagnostics ``d_out_real`` / ``d_out_fake`` (D's mean output on real and generated pairs)
and ``d_acc`` (the share of patches D puts on the right side of the objective's decision
threshold), and, on the steps asked to ``measure``, the gradient norms ``grad_norm_g`` /
``grad_norm_d`` before the optimizer steps.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo import losses
from ganzoo.build import build_objective, build_terms
from ganzoo.losses.terms import DView, GView
from ganzoo.recipe import Recipe
from ganzoo.training.ema import update_ema
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
        self.terms = build_terms(recipe, state.d_module)
        labels = recipe.data.labels
        #: the one-hot class channels of the condition (no instance edges), for terms that
        #: need the label map
        self.label_channels = (
            labels.num_classes + int(labels.dontcare_channel)
            if labels is not None and "labels" in self.terms.needs
            else 0
        )
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

    def __call__(self, batch: dict[str, Any], measure: bool = False) -> dict[str, torch.Tensor]:
        s, rl = self.state, self.recipe.loss
        real_a, real_b = self.to_device(batch["A"]), self.to_device(batch["B"])
        labels = real_a[:, : self.label_channels] if self.label_channels else None
        with self.autocast():
            fake_b = s.G(real_a)
        real_pair = torch.cat([real_a, real_b], 1)
        out: dict[str, torch.Tensor] = {}
        if s.d_trains():
            fake_pair = torch.cat([real_a, fake_b.detach()], 1)
            out.update(self._update_d(real_pair, fake_pair, measure, labels))

        # G update: D frozen, called unwrapped (no DDP sync for a module not being updated).
        s.d_module.requires_grad_(False)
        s.opt_g.zero_grad(set_to_none=True)
        terms, step = self.terms, s.step
        fake_pair_g = terms.augment(torch.cat([real_a, fake_b], 1), step)
        with self.autocast():
            fake_out = s.d_for_g(fake_pair_g)
            real_feats = None
            if rl.feature_matching > 0 or rl.style > 0:
                with torch.no_grad():
                    real_feats = s.d_for_g(terms.augment(real_pair, step))
        fake_out = _float(fake_out)
        extra: dict[str, torch.Tensor] = {}
        if terms:
            view = GView(
                step, s.d_for_g, self.autocast, self.objective, real_pair, fake_pair_g,
                fake_out, fake_b, labels,
            )  # fmt: skip
            extra = terms.g_loss(view)
        if terms.replacing:
            loss_g_gan = extra.pop("gan")
        else:
            loss_g_gan = losses.generator_gan_loss(self.objective, fake_out, self.reduction)
        loss_g = loss_g_gan
        out["g_gan"] = loss_g_gan.detach()
        for name, value in extra.items():
            loss_g = loss_g + value
            out[f"g_{name}"] = value.detach()
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
        if not s.g_trains():  # optim.train_only.generator: [] -- the losses are only logged
            return out
        s.scaler_g.scale(loss_g).backward()
        if measure:
            out["grad_norm_g"] = grad_norm(s.g_module.parameters(), s.scaler_g)
        s.scaler_g.step(s.opt_g)
        s.scaler_g.update()
        if s.ema is not None:
            update_ema(s.ema, s.g_module)
        return out

    def _update_d(
        self,
        real_pair: torch.Tensor,
        fake_pair: torch.Tensor,
        measure: bool = False,
        labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``optim.d_steps`` D updates on a pooled fake pair (fake first, then real), each
        input through the terms' augmentations. A gradient penalty interpolates each real pair
        with the current fake of the same condition (a pooled fake carries an older
        condition)."""
        s, terms = self.state, self.terms
        s.trainable_d()
        current = fake_pair.detach()
        fake_pair = s.pool.query(fake_pair)
        out: dict[str, torch.Tensor] = {}
        for _ in range(self.recipe.optim.d_steps):
            s.opt_d.zero_grad(set_to_none=True)
            fake_in, real_in = terms.augment(fake_pair, s.step), terms.augment(real_pair, s.step)
            with self.autocast():
                fake_out = s.D(fake_in)
                real_out = s.D(real_in)
            real_out, fake_out = _float(real_out), _float(fake_out)
            extra: dict[str, torch.Tensor] = {}
            view = None
            if terms:
                view = DView(
                    s.step, s.D, self.autocast, self.objective, real_in, fake_in,
                    real_out, fake_out, labels,
                )  # fmt: skip
                extra = terms.d_loss(view)
            if terms.replacing:
                real, fake = extra.pop("real"), extra.pop("fake")
                loss_d = real + fake
            else:
                real, fake = losses.discriminator_terms(
                    self.objective, real_out, fake_out, self.reduction
                )
                loss_d = (fake + real) * self.objective.d_scale
            if self.objective.needs_penalty:
                penalty = self.objective.penalty(s.D, real_pair, current)
                loss_d = loss_d + penalty
                out["d_penalty"] = penalty.detach()
            for name, value in extra.items():
                loss_d = loss_d + value
                out[f"d_{name}"] = value.detach()
            s.scaler_d.scale(loss_d).backward()
            if measure:
                out["grad_norm_d"] = grad_norm(s.d_module.parameters(), s.scaler_d)
            s.scaler_d.step(s.opt_d)
            s.scaler_d.update()
            if view is not None:
                terms.after_d_step(view)
        out.update(d=loss_d.detach(), d_real=real.detach(), d_fake=fake.detach())
        out.update(terms.diagnostics())
        if not terms.replacing:
            out.update(self._d_outputs(real_out, fake_out))
        return out

    @torch.no_grad()
    def _d_outputs(self, real_out: Outputs, fake_out: Outputs) -> dict[str, torch.Tensor]:
        """D's mean output on real and fake pairs and its accuracy, over every branch."""
        threshold = self.objective.threshold
        real = [branch[-1].detach() for branch in real_out]
        fake = [branch[-1].detach() for branch in fake_out]
        right = [
            (r > threshold).float().mean() + (f < threshold).float().mean()
            for r, f in zip(real, fake)
        ]
        return {
            "d_out_real": torch.stack([r.mean() for r in real]).mean(),
            "d_out_fake": torch.stack([f.mean() for f in fake]).mean(),
            "d_acc": torch.stack(right).mean() / 2,
        }


def grad_norm(parameters: Any, scaler: torch.amp.GradScaler) -> torch.Tensor:
    """The global L2 norm of the gradients (unscaled under fp16), a device tensor."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    return norm / scaler.get_scale() if scaler.is_enabled() else norm
