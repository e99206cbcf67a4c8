"""GAN objectives: a discriminator loss from real and fake logits, a generator loss from fake ones.

Every objective works on one branch's patch logits ``(N, 1, h, w)`` (raw scores, no sigmoid);
:func:`discriminator_terms` and :func:`generator_gan_loss` combine it over the branches of a
discriminator's output (a list of branches, each a list of feature maps ending with its logits)
by the discriminator's ``branch_reduction``: pix2pixHD sums its scales, LinesToFacePhoto
averages its branches. Objectives that need more than logits (``wgan_gp``'s gradient penalty)
set ``needs_penalty`` and implement :meth:`Objective.penalty`; the trainer adds it to the
discriminator loss.

Losses are computed in float32 whatever precision the logits come in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.errors import RegistryError, TrainingError
from ganzoo.registry import register

#: What a discriminator returns: branches, each its feature maps ending with its logits.
DiscriminatorOutput = Sequence[Sequence[Tensor]]


class Objective:
    """Base class of GAN objectives: per-branch losses on patch logits ``(N, 1, h, w)``.

    The discriminator minimises ``d_scale * (real_loss(real) + fake_loss(fake))`` (plus
    :meth:`penalty` where ``needs_penalty``); the generator minimises ``g_loss(fake)``.
    """

    #: True where :meth:`penalty` must be added to the discriminator loss.
    needs_penalty: bool = False
    #: Factor of the discriminator's real + fake terms: pix2pix and pix2pixHD halve them.
    d_scale: float = 0.5
    #: D output separating "real" (above) from "fake" (below): its accuracy's threshold.
    threshold: float = 0.0

    def real_loss(self, real_logits: Tensor) -> Tensor:
        """Scalar the discriminator minimises on one branch's logits of real pairs."""
        raise NotImplementedError

    def fake_loss(self, fake_logits: Tensor) -> Tensor:
        """Scalar the discriminator minimises on one branch's logits of generated pairs."""
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """Scalar the generator minimises, from one branch's fake logits."""
        raise NotImplementedError

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """``real_loss + fake_loss`` of one branch (before ``d_scale``)."""
        return self.real_loss(real_logits) + self.fake_loss(fake_logits)

    def penalty(
        self,
        discriminator: Callable[[Tensor], DiscriminatorOutput],
        real_pairs: Tensor,
        fake_pairs: Tensor,
    ) -> Tensor:
        """Extra discriminator loss term (only objectives with ``needs_penalty``)."""
        raise TypeError(f"{type(self).__name__} has no penalty (needs_penalty is False)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@register(
    "objective",
    "vanilla",
    paper="Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014 (arXiv:1406.2661); "
    "as in pix2pix, Isola et al., CVPR 2017 (arXiv:1611.07004)",
)
class Vanilla(Objective):
    """Cross-entropy GAN (non-saturating G): BCE with logits against 1 (real) and 0 (fake).

    D loss is ``d_scale * (BCE(real, 1) + BCE(fake, 0))``, ``d_scale`` 0.5 as pix2pix's
    ``backward_D`` with ``GANLoss('vanilla')``; LinesToFacePhoto's ``main.py`` does not halve
    it (``d_scale: 1``). G loss is ``BCE(fake, 1)``.
    """

    def __init__(self, d_scale: float = 0.5) -> None:
        if not d_scale > 0:
            raise RegistryError(
                f"vanilla.d_scale: must be > 0 (0.5 or Lines2Face's 1), got {d_scale!r}"
            )
        self.d_scale = float(d_scale)

    def real_loss(self, real_logits: Tensor) -> Tensor:
        real = real_logits.float()
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real))

    def fake_loss(self, fake_logits: Tensor) -> Tensor:
        fake = fake_logits.float()
        return F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return self.real_loss(fake_logits)


@register(
    "objective",
    "lsgan",
    paper="Mao et al., Least Squares Generative Adversarial Networks, ICCV 2017 (arXiv:1611.04076)",
)
class LeastSquares(Objective):
    """Least-squares GAN: MSE of the logits against 1 (real) and 0 (fake) (threshold 0.5).

    D loss is ``0.5 * (MSE(real, 1) + MSE(fake, 0))``; G loss is ``MSE(fake, 1)`` (pix2pix's
    and pix2pixHD's ``nn.MSELoss`` against a target tensor, computed the same way).
    """

    threshold = 0.5

    def real_loss(self, real_logits: Tensor) -> Tensor:
        real = real_logits.float()
        return F.mse_loss(real, torch.ones_like(real))

    def fake_loss(self, fake_logits: Tensor) -> Tensor:
        fake = fake_logits.float()
        return F.mse_loss(fake, torch.zeros_like(fake))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return self.real_loss(fake_logits)


@register(
    "objective",
    "hinge",
    paper="Lim & Ye, Geometric GAN, 2017 (arXiv:1705.02894); as in SPADE, Park et al., "
    "CVPR 2019 (arXiv:1903.07291)",
)
class Hinge(Objective):
    """Hinge GAN: D d_scale * (mean(relu(1 - real)) + mean(relu(1 + fake))), G -mean(fake).

    ``d_scale`` 0.5 halves the D loss as ganzoo's other objectives; SPADE's ``GANLoss`` adds
    the real and fake terms unhalved (``d_scale: 1``).
    """

    def __init__(self, d_scale: float = 0.5) -> None:
        if not d_scale > 0:
            raise RegistryError(f"hinge.d_scale: must be > 0 (0.5 or SPADE's 1), got {d_scale!r}")
        self.d_scale = float(d_scale)

    def real_loss(self, real_logits: Tensor) -> Tensor:
        return F.relu(1 - real_logits.float()).mean()

    def fake_loss(self, fake_logits: Tensor) -> Tensor:
        return F.relu(1 + fake_logits.float()).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


@register(
    "objective",
    "wgan_gp",
    paper="Gulrajani et al., Improved Training of Wasserstein GANs, NeurIPS 2017 "
    "(arXiv:1704.00028)",
)
class WassersteinGP(Objective):
    """Wasserstein GAN with gradient penalty, as the paper: D ``mean(fake) - mean(real) +
    penalty * GP`` (not halved, so ``penalty`` is the paper's lambda), G ``-mean(fake)``.

    The critic of a sample is its patch logits averaged over the patch and over the branches:
    the quantity the branch-averaged D loss compares, so one backward pass constrains the critic
    that is actually trained (the pix2pix repo differentiates the patch *sum* instead, which
    scales the gradient by h * w). :meth:`penalty` is
    ``penalty * mean_i((||d critic(x_hat_i) / d x_hat_i||_2 - 1)^2)`` on random interpolates of
    real and fake (condition, image) pairs, the norm over all of C, H, W, as the pix2pix repo's
    ``cal_gradient_penalty`` on the concatenated pairs. The critic should not mix samples (no
    batch norm), as in the paper.

    ``penalty: 0, d_scale: 0.5`` is pix2pix's ``--gan_mode wgangp``: its ``backward_D`` halves
    the critic loss and never calls ``cal_gradient_penalty`` (no penalty, no weight clipping).
    """

    needs_penalty = True
    d_scale = 1.0

    def __init__(self, penalty: float = 10.0, d_scale: float = 1.0) -> None:
        if not penalty >= 0:
            raise RegistryError(
                f"wgan_gp.penalty: must be >= 0 (the paper uses 10), got {penalty!r}"
            )
        if not d_scale > 0:
            raise RegistryError(
                f"wgan_gp.d_scale: must be > 0 (1 or pix2pix's 0.5), got {d_scale!r}"
            )
        self.penalty_weight = float(penalty)
        self.d_scale = float(d_scale)
        self.needs_penalty = self.penalty_weight > 0  # penalty 0: the plain critic

    def real_loss(self, real_logits: Tensor) -> Tensor:
        return -real_logits.float().mean()

    def fake_loss(self, fake_logits: Tensor) -> Tensor:
        return fake_logits.float().mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()

    def penalty(
        self,
        discriminator: Callable[[Tensor], DiscriminatorOutput],
        real_pairs: Tensor,
        fake_pairs: Tensor,
    ) -> Tensor:
        """Gradient penalty on ``x_hat = a * real + (1 - a) * fake``, ``a ~ U(0, 1)`` per sample.

        ``real_pairs`` and ``fake_pairs`` are ``(N, C, H, W)`` (condition and image
        concatenated, as D sees them). Runs in float32 with autocast off; keeps the graph so
        the result backpropagates into the discriminator. Returns a scalar >= 0.
        """
        with torch.autocast(real_pairs.device.type, enabled=False):
            real32, fake32 = real_pairs.detach().float(), fake_pairs.detach().float()
            a = torch.rand(real32.shape[0], 1, 1, 1, device=real32.device)
            x_hat = (a * real32 + (1 - a) * fake32).requires_grad_(True)
            grad = critic_input_gradient(discriminator, x_hat)
            norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
            return self.penalty_weight * (norm - 1).square().mean()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(penalty={self.penalty_weight}, d_scale={self.d_scale})"


def critic_input_gradient(
    discriminator: Callable[[Tensor], DiscriminatorOutput], x: Tensor
) -> Tensor:
    """``d sum_n critic(x_n) / dx`` with the graph kept (so a penalty on it trains D), for a
    float32 ``x`` that requires grad; call it with autocast off. A patch discriminator's
    critic of a sample is each branch's patch logits averaged, then the branches averaged
    (``wgan_gp``'s penalty, R1 / R2)."""
    per_branch = [logits.float().flatten(1).mean(1) for logits in branch_logits(discriminator(x))]
    critic = torch.stack(per_branch).mean(0)  # (N,)
    (grad,) = torch.autograd.grad(critic.sum(), x, create_graph=True)
    return grad


def branch_logits(out: DiscriminatorOutput) -> list[Tensor]:
    """The patch logits (last entry) of each branch of a discriminator's output.

    Raises a one-line :class:`TrainingError` when ``out`` does not follow the contract
    (a non-empty list of branches, each a non-empty list of tensors).
    """
    ok = isinstance(out, (list, tuple)) and len(out) > 0
    ok = ok and all(
        isinstance(b, (list, tuple)) and len(b) > 0 and isinstance(b[-1], Tensor) for b in out
    )
    if not ok:
        raise TrainingError(
            "discriminator output must be a non-empty list of branches, each a list of feature "
            f"maps ending with its (N, 1, h, w) logits; got {_describe(out)}"
        )
    return [branch[-1] for branch in out]


def paired_branches(
    real_out: DiscriminatorOutput, fake_out: DiscriminatorOutput
) -> list[tuple[Sequence[Tensor], Sequence[Tensor]]]:
    """``(real_branch, fake_branch)`` pairs of two outputs of one discriminator, both checked."""
    n_real, n_fake = len(branch_logits(real_out)), len(branch_logits(fake_out))
    if n_real != n_fake:
        raise TrainingError(
            f"discriminator returned {n_real} branches for real images but {n_fake} for fake "
            "ones; its number of branches must not depend on the input"
        )
    return list(zip(real_out, fake_out))


#: How a multi-branch discriminator's per-branch losses combine (see each D's docs).
Reduction = Literal["mean", "sum"]


def reduce_branches(values: Sequence[Tensor], reduction: Reduction = "mean") -> Tensor:
    """Mean or sum of per-branch scalars (float32)."""
    stacked = torch.stack(list(values))
    return stacked.sum() if reduction == "sum" else stacked.mean()


def branch_reduction(discriminator: object) -> Reduction:
    """The reduction a discriminator declares (``branch_reduction``; default ``mean``)."""
    value = getattr(discriminator, "branch_reduction", "mean")
    if value not in ("mean", "sum"):
        raise TrainingError(f"branch_reduction must be 'mean' or 'sum', got {value!r}")
    return value


def discriminator_terms(
    objective: Objective,
    real_out: DiscriminatorOutput,
    fake_out: DiscriminatorOutput,
    reduction: Reduction = "mean",
) -> tuple[Tensor, Tensor]:
    """``(real term, fake term)``: ``objective.real_loss`` / ``fake_loss`` over the branches,
    combined by ``reduction`` (float32 scalars, before ``d_scale``)."""
    pairs = paired_branches(real_out, fake_out)
    real = reduce_branches([objective.real_loss(r[-1]) for r, _ in pairs], reduction)
    fake = reduce_branches([objective.fake_loss(f[-1]) for _, f in pairs], reduction)
    return real, fake


def discriminator_loss(
    objective: Objective,
    real_out: DiscriminatorOutput,
    fake_out: DiscriminatorOutput,
    reduction: Reduction = "mean",
) -> Tensor:
    """The discriminator's GAN loss: ``d_scale * (real + fake)`` (scalar, float32; any
    gradient penalty is added by the caller)."""
    real, fake = discriminator_terms(objective, real_out, fake_out, reduction)
    return objective.d_scale * (fake + real)


def generator_gan_loss(
    objective: Objective, fake_out: DiscriminatorOutput, reduction: Reduction = "mean"
) -> Tensor:
    """``objective.g_loss`` over the discriminator's branches (scalar, float32)."""
    return reduce_branches([objective.g_loss(f) for f in branch_logits(fake_out)], reduction)


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(type(v).__name__ for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    return type(value).__name__
