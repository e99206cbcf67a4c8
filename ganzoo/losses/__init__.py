"""GAN objectives and the losses the trainer adds to them.

- :mod:`ganzoo.losses.objectives`: the ``objective`` registry kind (``vanilla``, ``lsgan``,
  ``hinge``, ``wgan_gp``) and the branch-averaged :func:`discriminator_loss` /
  :func:`generator_gan_loss` over a discriminator's output.
- :mod:`ganzoo.losses.feature_matching`: pix2pixHD's discriminator feature-matching loss.
- :mod:`ganzoo.losses.perceptual`: pix2pixHD's VGG19 perceptual loss (weights from the torch
  cache only, never downloaded).

The L1 term is plain :func:`torch.nn.functional.l1_loss`.
"""

from __future__ import annotations

from ganzoo.losses.feature_matching import feature_matching_loss
from ganzoo.losses.objectives import (
    Hinge,
    LeastSquares,
    Objective,
    Vanilla,
    WassersteinGP,
    branch_logits,
    discriminator_loss,
    generator_gan_loss,
    paired_branches,
)
from ganzoo.losses.perceptual import PerceptualLoss, vgg19_weights_path

__all__ = [
    "Hinge",
    "LeastSquares",
    "Objective",
    "PerceptualLoss",
    "Vanilla",
    "WassersteinGP",
    "branch_logits",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_gan_loss",
    "paired_branches",
    "vgg19_weights_path",
]
