"""GAN objectives: a discriminator loss from real and fake logits, a generator loss from fake ones.

Every objective works on one branch's patch logits ``(N, 1, h, w)`` (raw scores, no sigmoid);
:func:`discriminator_loss` and :func:`generator_gan_loss` average it over the branches of a
discriminator's output (a list of branches, each a list of feature maps ending with its logits).
Objectives that need more than logits (``wgan_gp``'s gradient penalty) set ``needs_penalty``
and implement :meth:`Objective.penalty`; the trainer adds it to the discriminator loss.

Losses are computed in float32 whatever precision the logits come in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.errors import RegistryError, TrainingError
from ganzoo.registry import register

#: What a discriminator returns: branches, each its feature maps ending with its logits.
DiscriminatorOutput = Sequence[Sequence[Tensor]]


class Objective:
    """Base class of GAN objectives: per-branch losses on patch logits ``(N, 1, h, w)``."""

    #: True where :meth:`penalty` must be added to the discriminator loss.
    needs_penalty: bool = False

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Scalar the discriminator minimises, from one branch's real and fake logits."""
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """Scalar the generator minimises, from one branch's fake logits."""
        raise NotImplementedError

    def penalty(
        self,
        discriminator: Callable[[Tensor], DiscriminatorOutput],
        condition: Tensor,
        real: Tensor,
        fake: Tensor,
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

    D loss is ``BCE(real, 1) + BCE(fake, 0)`` (the trainer halves every D loss, as pix2pix);
    G loss is ``BCE(fake, 1)``.
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = real_logits.float(), fake_logits.float()
        real_term = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        fake_term = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        return real_term + fake_term

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        fake = fake_logits.float()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


@register(
    "objective",
    "lsgan",
    paper="Mao et al., Least Squares Generative Adversarial Networks, ICCV 2017 (arXiv:1611.04076)",
)
class LeastSquares(Objective):
    """Least-squares GAN: MSE of the logits against 1 (real) and 0 (fake).

    D loss is ``MSE(real, 1) + MSE(fake, 0)`` (halved by the trainer); G loss is ``MSE(fake, 1)``.
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = real_logits.float(), fake_logits.float()
        return (real - 1).square().mean() + fake.square().mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return (fake_logits.float() - 1).square().mean()


@register(
    "objective",
    "hinge",
    paper="Lim & Ye, Geometric GAN, 2017 (arXiv:1705.02894); as in SPADE, Park et al., "
    "CVPR 2019 (arXiv:1903.07291)",
)
class Hinge(Objective):
    """Hinge GAN: D mean(relu(1 - real)) + mean(relu(1 + fake)), G -mean(fake)."""

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        real, fake = real_logits.float(), fake_logits.float()
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()


@register(
    "objective",
    "wgan_gp",
    paper="Gulrajani et al., Improved Training of Wasserstein GANs, NeurIPS 2017 "
    "(arXiv:1704.00028)",
)
class WassersteinGP(Objective):
    """Wasserstein GAN with gradient penalty: D mean(fake) - mean(real), G -mean(fake).

    The critic of a sample is its patch logits averaged over the patch and over the branches:
    the quantity the branch-averaged D loss compares, so one backward pass constrains the critic
    that is actually trained (the pix2pix repo differentiates the patch *sum* instead, which
    scales the gradient by h * w). :meth:`penalty` is
    ``penalty * mean_i((||d critic(x_hat_i) / d x_hat_i||_2 - 1)^2)`` on random interpolates of
    real and fake images, the norm over all of C, H, W. The critic should not mix samples
    (no batch norm), as in the paper.
    """

    needs_penalty = True

    def __init__(self, penalty: float = 10.0) -> None:
        if not penalty >= 0:
            raise RegistryError(
                f"wgan_gp.penalty: must be >= 0 (the paper uses 10), got {penalty!r}"
            )
        self.penalty_weight = float(penalty)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return fake_logits.float().mean() - real_logits.float().mean()

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -fake_logits.float().mean()

    def penalty(
        self,
        discriminator: Callable[[Tensor], DiscriminatorOutput],
        condition: Tensor,
        real: Tensor,
        fake: Tensor,
    ) -> Tensor:
        """Gradient penalty on ``x_hat = a * real + (1 - a) * fake``, ``a ~ U(0, 1)`` per sample.

        ``condition`` ``(N, Cc, H, W)``, ``real`` and ``fake`` ``(N, C, H, W)``; the critic sees
        ``cat(condition, x_hat)``. Runs in float32 with autocast off; keeps the graph so the
        result backpropagates into the discriminator. Returns a scalar >= 0.
        """
        with torch.autocast(real.device.type, enabled=False):
            real32, fake32 = real.detach().float(), fake.detach().float()
            a = torch.rand(real32.shape[0], 1, 1, 1, device=real32.device)
            x_hat = (a * real32 + (1 - a) * fake32).requires_grad_(True)
            out = discriminator(torch.cat([condition.detach().float(), x_hat], dim=1))
            per_branch = [logits.float().flatten(1).mean(1) for logits in branch_logits(out)]
            critic = torch.stack(per_branch).mean(0)  # (N,)
            (grad,) = torch.autograd.grad(critic.sum(), x_hat, create_graph=True)
            norm = torch.linalg.vector_norm(grad.flatten(1), dim=1)
            return self.penalty_weight * (norm - 1).square().mean()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(penalty={self.penalty_weight})"


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


def discriminator_loss(
    objective: Objective, real_out: DiscriminatorOutput, fake_out: DiscriminatorOutput
) -> Tensor:
    """``objective.d_loss`` averaged over the discriminator's branches (scalar, float32)."""
    pairs = paired_branches(real_out, fake_out)
    return torch.stack([objective.d_loss(r[-1], f[-1]) for r, f in pairs]).mean()


def generator_gan_loss(objective: Objective, fake_out: DiscriminatorOutput) -> Tensor:
    """``objective.g_loss`` averaged over the discriminator's branches (scalar, float32)."""
    return torch.stack([objective.g_loss(f) for f in branch_logits(fake_out)]).mean()


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(type(v).__name__ for v in value[:3]) + (", ..." if len(value) > 3 else "")
        return f"a {type(value).__name__} of {len(value)} ({inner})"
    return type(value).__name__
