"""Losses on the discriminator's features: feature matching (pix2pixHD, LinesToFacePhoto) and
LinesToFacePhoto's Gram-matrix style loss. Gradients reach only the fake side."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.objectives import DiscriminatorOutput, paired_branches

#: ``pix2pixhd``: every branch, every feature before the logits, weighted 4/n_b and 1/B.
#: ``lines2face``: the first branch only, its last three outputs (logits included), summed.
FeatureMatchingForm = Literal["pix2pixhd", "lines2face"]

#: How many of the first branch's last outputs LinesToFacePhoto compares (its
#: ``num_feature_matching`` and ``num_style_loss`` defaults).
LINES2FACE_LAYERS = 3


def feature_matching_loss(
    real_out: DiscriminatorOutput,
    fake_out: DiscriminatorOutput,
    form: FeatureMatchingForm = "pix2pixhd",
) -> Tensor:
    """Feature matching between D's outputs on real and on generated pairs.

    ``pix2pixhd`` (NVIDIA/pix2pixHD ``pix2pixHD_model.py``):
    ``sum_b sum_j (1 / B) * (4 / n_b) * L1(fake_out[b][j], real_out[b][j])`` over the ``n_b``
    intermediate features of branch ``b`` (its logits excluded), ``B`` branches; for an
    ``n_layers`` PatchGAN ``n_b = n_layers + 1``, so each weight is 1 at the default 3.
    ``lines2face`` (LiYuhangUSTC/Lines2Face ``main.py``): ``sum_i L1(fake_out[0][-i],
    real_out[0][-i])`` for i = 1..3, the 30x30 head's logits, its hidden features and the
    shared trunk's last features. Returns a float32 scalar >= 0.
    """
    pairs = paired_branches(real_out, fake_out)
    total = torch.zeros((), device=fake_out[0][-1].device, dtype=torch.float32)
    for real_feat, fake_feat, weight in _compared(pairs, form):
        total = total + weight * F.l1_loss(fake_feat.float(), real_feat.detach().float())
    return total


def gram_matrix(features: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)``: ``F F^T / (2 H W C)``, as Lines2Face's
    ``ops.gram_matrix`` (float32)."""
    n, c, h, w = features.shape
    flat = features.float().reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (2.0 * h * w * c)


def style_loss(real_out: DiscriminatorOutput, fake_out: DiscriminatorOutput) -> Tensor:
    """LinesToFacePhoto's style loss: ``sum_i mean|Gram(fake_out[0][-i]) - Gram(real_out[0][-i])|``
    over the first branch's last three outputs (the features feature matching uses), with
    :func:`gram_matrix`. Returns a float32 scalar >= 0."""
    pairs = paired_branches(real_out, fake_out)
    total = torch.zeros((), device=fake_out[0][-1].device, dtype=torch.float32)
    for real_feat, fake_feat, _ in _compared(pairs, "lines2face"):
        total = total + F.l1_loss(gram_matrix(fake_feat), gram_matrix(real_feat.detach()))
    return total


def _compared(pairs, form: FeatureMatchingForm):  # noqa: ANN001, ANN202 - internal
    """(real feature, fake feature, weight) triples a form compares."""
    if form == "lines2face":
        real_branch, fake_branch = pairs[0]
        k = min(LINES2FACE_LAYERS, len(fake_branch))
        return [(real_branch[-i], fake_branch[-i], 1.0) for i in range(1, k + 1)]
    if form != "pix2pixhd":
        raise ValueError(f"unknown feature matching form {form!r}")
    out = []
    for real_branch, fake_branch in pairs:
        feats = list(zip(real_branch[:-1], fake_branch[:-1]))
        out += [(r, f, 4.0 / len(feats) / len(pairs)) for r, f in feats]
    return out
