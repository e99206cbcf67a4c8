"""GAN objectives and the losses the trainer adds to them.

- :mod:`ganzoo.losses.objectives`: the ``objective`` registry kind (``vanilla``, ``lsgan``,
  ``hinge``, ``wgan_gp``) and :func:`discriminator_terms` / :func:`generator_gan_loss` over
  a discriminator's branches (mean or sum, as the discriminator declares).
- :mod:`ganzoo.losses.feature_matching`: feature matching in pix2pixHD's and
  LinesToFacePhoto's forms, and LinesToFacePhoto's Gram-matrix style loss.
- :mod:`ganzoo.losses.perceptual`: pix2pixHD's VGG19 perceptual loss (weights from the torch
  cache only, never downloaded).

The L1 term is plain :func:`torch.nn.functional.l1_loss`.
"""

from __future__ import annotations

from ganzoo.losses.feature_matching import (
    FeatureMatchingForm,
    feature_matching_loss,
    gram_matrix,
    style_loss,
)
from ganzoo.losses.objectives import (
    Hinge,
    LeastSquares,
    Objective,
    Reduction,
    Vanilla,
    WassersteinGP,
    branch_logits,
    branch_reduction,
    discriminator_loss,
    discriminator_terms,
    generator_gan_loss,
    paired_branches,
    reduce_branches,
)
from ganzoo.losses.perceptual import PerceptualLoss, vgg19_weights_path

__all__ = [
    "FeatureMatchingForm",
    "Hinge",
    "LeastSquares",
    "Objective",
    "PerceptualLoss",
    "Reduction",
    "Vanilla",
    "WassersteinGP",
    "branch_logits",
    "branch_reduction",
    "discriminator_loss",
    "discriminator_terms",
    "feature_matching_loss",
    "generator_gan_loss",
    "gram_matrix",
    "paired_branches",
    "reduce_branches",
    "style_loss",
    "vgg19_weights_path",
]
