"""OASIS' adversarial loss (Sushko et al., ICLR 2021): D classifies every pixel into N + 1
classes, the N semantic classes of the label map for real images and class 0 ("fake") for
generated ones, with class-balanced cross-entropy, plus the LabelMix consistency term.

As boschresearch/OASIS ``models/losses.py`` (``losses_computer``, ``get_class_balancing``,
``get_n1_target``) and ``models/models.py`` (``generate_labelmix``, the D and G losses):

- targets: a real pixel of class ``c`` (the one-hot map's argmax) has target ``c + 1``, a
  generated pixel target 0;
- class balance: over the batch, class ``c`` weighs ``N H W / (n_present * count_c)``, where
  ``count_c`` is its pixel count and ``n_present`` the number of classes present; the don't-care
  classes weigh 0 and are not counted as present;
- D: ``real = mean(w * CE(D(real), c + 1))``, ``fake = mean(CE(D(fake), 0))`` (unweighted);
  G: ``gan = mean(w * CE(D(fake), c + 1))``;
- LabelMix: each class of the batch goes to the real (1) or the generated (0) image by a fair
  coin; ``mixed = M real + (1 - M) fake``; ``labelmix = lambda * MSE(D(mixed), M D(real) +
  (1 - M) D(fake))`` over D's N + 1 logits, every D output carrying its gradient.

Pixels of no class (an ``ignore_index`` without a don't-care channel: an all-zero one-hot
column, which OASIS' label maps never have) weigh 0 in the real and G terms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganzoo.losses.terms import DView, GView, Term


def classes_of(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(N, K, H, W)`` one-hot map -> ``(N, H, W)`` class ids (argmax) and the ``(N, H, W)``
    bool mask of pixels that have a class (a nonzero column)."""
    return labels.argmax(1), labels.sum(1) > 0


def class_weights(labels: Tensor, dontcare: Iterable[int] = (), balance: bool = True) -> Tensor:
    """``(N, K, H, W)`` one-hot map -> ``(N, H, W)`` float32 per-pixel weights.

    ``balance``: OASIS' ``get_class_balancing``, class ``c`` weighs
    ``N H W / (n_present count_c)``, the ``dontcare`` classes 0; without it every pixel weighs
    1 (``--no_balancing_inloss``). Pixels of no class weigh 0 either way."""
    ids, has_class = classes_of(labels)
    if not balance:
        return has_class.float()
    counts = labels.float().sum((0, 2, 3))
    for c in dontcare:
        counts[c] = 0
    present = (counts > 0).sum().clamp(min=1)
    coefficients = torch.where(
        counts > 0, ids[0].numel() * len(labels) / (present * counts.clamp(min=1)), 0.0
    )
    return coefficients[ids] * has_class


def n1_targets(labels: Tensor, real: bool) -> Tensor:
    """``(N, H, W)`` int64 targets over N + 1 classes: class id + 1 for a real image, 0 ("fake")
    for a generated one."""
    ids, _ = classes_of(labels)
    return ids + 1 if real else torch.zeros_like(ids)


def n1_loss(logits: Tensor, labels: Tensor, real: bool, weights: Tensor | None = None) -> Tensor:
    """OASIS' ``losses_computer.loss``: the mean over pixels of ``weights * CE(logits,
    targets)`` (``weights`` None: unweighted, the fake term). ``logits`` ``(N, K + 1, H, W)``."""
    ce = F.cross_entropy(logits.float(), n1_targets(labels, real), reduction="none")
    return (ce * weights).mean() if weights is not None else ce.mean()


def labelmix_mask(labels: Tensor) -> Tensor:
    """``(N, K, H, W)`` one-hot map -> ``(N, 1, H, W)`` float mask of 0 and 1: every class (and
    the pixels of no class, as one more) drawn real (1) or fake (0) by a fair coin from torch's
    global generator, the same draw in every image of the batch."""
    ids, has_class = classes_of(labels)
    ids = torch.where(has_class, ids, labels.shape[1])
    coins = torch.randint(0, 2, (labels.shape[1] + 1,)).to(labels.device, torch.float32)
    return coins[ids].unsqueeze(1)


def labelmix_loss(mask: Tensor, mixed: Tensor, real: Tensor, fake: Tensor) -> Tensor:
    """OASIS' ``loss_labelmix``: ``MSE(mixed, mask * real + (1 - mask) * fake)`` over the
    ``(N, K + 1, H, W)`` logits (unweighted)."""
    return F.mse_loss(mask * real + (1 - mask) * fake, mixed)


class OasisLoss(Term):
    """The OASIS D and G adversarial loss as a step term that replaces the objective.

    ``labelmix``: LabelMix's weight (OASIS' ``lambda_labelmix``: 10 for ADE20K and COCO-Stuff,
    5 for Cityscapes; 0: off, ``--no_labelmix``); ``balance``: class-balanced weights;
    ``dontcare``: class ids of weight 0 (OASIS' ``contain_dontcare_label`` channel 0). D's
    output is one branch whose logits have K + 1 channels, K the label map's."""

    needs = frozenset({"labels"})
    replaces_objective = True

    def __init__(
        self, labelmix: float = 10.0, balance: bool = True, dontcare: Iterable[int] = ()
    ) -> None:
        self.labelmix = float(labelmix)
        self.balance = balance
        self.dontcare = tuple(dontcare)

    def _weights(self, labels: Tensor) -> Tensor:
        return class_weights(labels, self.dontcare, self.balance)

    def d_loss(self, view: DView) -> dict[str, Tensor]:
        labels = _labels(view.labels)
        real, fake = view.real_out[0][-1], view.fake_out[0][-1]
        out = {
            "real": n1_loss(real, labels, True, self._weights(labels)),
            "fake": n1_loss(fake, labels, False),
        }
        if self.labelmix > 0:
            mask = labelmix_mask(labels)
            mixed_pairs = mask * view.real_pairs + (1 - mask) * view.fake_pairs
            with view.autocast():
                mixed = view.discriminator(mixed_pairs)[0][-1]
            out["labelmix"] = self.labelmix * labelmix_loss(mask, mixed.float(), real, fake)
        return out

    def g_loss(self, view: GView) -> dict[str, Tensor]:
        labels = _labels(view.labels)
        fake = view.fake_out[0][-1]
        return {"gan": n1_loss(fake, labels, True, self._weights(labels))}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        lm = f"LabelMix x{self.labelmix:g}" if self.labelmix > 0 else "no LabelMix"
        balance = "class-balanced" if self.balance else "unweighted"
        return f"OASIS N+1-class cross-entropy ({balance}, {lm})"

    def __repr__(self) -> str:
        return (
            f"OasisLoss(labelmix={self.labelmix:g}, balance={self.balance}, "
            f"dontcare={list(self.dontcare)})"
        )


def _labels(labels: Tensor | None) -> Tensor:
    if labels is None:  # build_terms refuses such a recipe first; this guards direct use
        raise ValueError("the OASIS loss needs the one-hot label map (data.labels)")
    return labels
