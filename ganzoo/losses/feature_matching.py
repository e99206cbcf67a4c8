"""Discriminator feature matching (pix2pixHD): the generator matches D's features of real images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.objectives import DiscriminatorOutput, paired_branches


def feature_matching_loss(real_out: DiscriminatorOutput, fake_out: DiscriminatorOutput) -> Tensor:
    """pix2pixHD's feature-matching loss over every branch of a discriminator's output.

    ``sum_b sum_j (1 / B) * (4 / n_b) * L1(fake_out[b][j], real_out[b][j].detach())`` over the
    ``n_b`` intermediate features of branch ``b`` (its logits excluded), ``B`` branches. For a
    pix2pixHD ``n_layers`` PatchGAN, ``n_b = n_layers + 1``. Gradients reach only the fake side.
    Returns a float32 scalar >= 0 (0 when no branch has intermediate features).
    """
    pairs = paired_branches(real_out, fake_out)
    total = torch.zeros((), device=fake_out[0][-1].device, dtype=torch.float32)
    for real_branch, fake_branch in pairs:
        real_feats, fake_feats = real_branch[:-1], fake_branch[:-1]
        if not fake_feats:
            continue
        weight = 4.0 / len(fake_feats) / len(pairs)
        for real_feat, fake_feat in zip(real_feats, fake_feats):
            total = total + weight * F.l1_loss(fake_feat.float(), real_feat.detach().float())
    return total
