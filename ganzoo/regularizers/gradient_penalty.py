"""R1 and R2: zero-centred gradient penalties on D's real and on its generated inputs.

Mescheder et al., Which Training Methods for GANs do actually Converge?, ICML 2018
(arXiv:1801.04406): ``R1 = gamma/2 * E_real ||grad_x D(x)||^2`` and ``R2`` the same on
generated samples; gamma 10 there (LMescheder/GAN_stability ``configs/imagenet.yaml``,
commit 1c8fe0d, at 128x128) and in StyleGAN2. StyleGAN2's lazy form (Karras et al.,
CVPR 2020, arXiv:1912.04958; NVlabs/stylegan2-ada-pytorch ``training_loop.py`` /
``loss.py``, commit 375a436) computes the penalty only every ``every`` (16) steps and
multiplies it by ``every``, so its average weight is unchanged; ``every: 1`` is the plain form.
Not taken from the lazy form: its rescaling of D's learning rate and betas by
``every / (every + 1)``.

For a patch discriminator ``D(x)`` is the sample's critic as for ``wgan_gp``: each branch's
patch logits averaged, then the branches averaged. The gradient is taken at D's input as D
sees it (after the terms' augmentations; upstream differentiates through its augmentation to
the un-augmented image) and, by default, only over the image channels of the (condition,
image) pair (``wrt: image``): the generator moves the image, never the condition, so that is
the direction in which D must stay smooth (GAN_stability's class-conditional D likewise
differentiates the image only, never the label); ``wrt: pair`` penalises the condition too.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ganzoo.errors import RegistryError
from ganzoo.losses.objectives import critic_input_gradient
from ganzoo.losses.terms import DView
from ganzoo.registry import register
from ganzoo.regularizers.pairs import PairTerm

Wrt = Literal["image", "pair"]


class ZeroCentredPenalty(PairTerm):
    """``gamma / 2 * E ||grad D||^2`` on D's real (R1) or generated (R2) inputs, lazily."""

    name = ""
    on_real = True

    def __init__(self, gamma: float = 10.0, every: int = 16, wrt: Wrt = "image") -> None:
        if not gamma > 0 or every < 1:
            raise RegistryError(
                f"{self.name}: gamma must be > 0 and every >= 1, got {gamma} and {every}"
            )
        self.gamma, self.every, self.wrt = float(gamma), int(every), wrt

    def penalty(self, discriminator, pairs: Tensor) -> Tensor:  # noqa: ANN001 - D callable
        """``gamma / 2 * mean_n ||grad_x D(x_n)||^2`` (unscaled by ``every``), float32, with
        the graph kept so that it trains D. Under ``train.compile`` the module that compile
        wraps is called (compiled graphs do not take a double backward)."""
        discriminator = getattr(discriminator, "_orig_mod", discriminator)
        with torch.autocast(pairs.device.type, enabled=False):
            x = pairs.detach().float().requires_grad_(True)
            grad = critic_input_gradient(discriminator, x)
        if self.wrt == "image":
            grad = grad[:, self.split(x) :]
        return self.gamma / 2 * grad.square().flatten(1).sum(1).mean()

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        if view.step % self.every:
            return {}
        pairs = view.real_pairs if self.on_real else view.fake_pairs
        return {self.name: self.every * self.penalty(view.discriminator, pairs)}

    def describe(self) -> str:
        side = "real" if self.on_real else "generated"
        lazy = f"every {self.every} steps (x{self.every})" if self.every > 1 else "every step"
        return (
            f"{self.name}: gamma/2 ||grad D||^2 on {side} pairs, gamma {self.gamma:g}, "
            f"w.r.t. the {self.wrt}, {lazy}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma}, every={self.every}, wrt={self.wrt!r})"


@register(
    "regularizer",
    "r1",
    paper="Mescheder et al., Which Training Methods for GANs do actually Converge?, ICML 2018 "
    "(arXiv:1801.04406); lazy form: Karras et al., StyleGAN2, CVPR 2020 (arXiv:1912.04958)",
)
class R1(ZeroCentredPenalty):
    """R1: ``gamma/2 ||grad D||^2`` on real pairs, every ``every`` steps times ``every``.

    ``wrt``: ``image`` differentiates with respect to the image channels of the pair only,
    ``pair`` with respect to the condition's as well. ``every: 1`` is the non-lazy form."""

    name = "r1"
    on_real = True


@register(
    "regularizer",
    "r2",
    paper="Mescheder et al., Which Training Methods for GANs do actually Converge?, ICML 2018 "
    "(arXiv:1801.04406)",
)
class R2(ZeroCentredPenalty):
    """R2: ``gamma/2 ||grad D||^2`` on generated pairs, every ``every`` steps times ``every``.

    ``wrt``: ``image`` differentiates with respect to the image channels of the pair only,
    ``pair`` with respect to the condition's as well. ``every: 1`` is the non-lazy form."""

    name = "r2"
    on_real = False
