"""Spectral normalisation of every conv and linear layer of a network, and the renormalisation
of an averaged copy's power-iteration vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm, spectral_norm


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every Conv2d / ConvTranspose2d / Linear in ``module`` (in place)."""
    for m in list(module.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if not parametrize.is_parametrized(m, "weight"):
                spectral_norm(m)
    return module


@torch.no_grad()
def renormalise_spectral_norm(module: nn.Module, *, tolerance: float | None = None) -> nn.Module:
    """Re-run the power iteration of every spectral norm in ``module`` (in place) on its current
    weight, starting from the stored vectors, so that ``_u`` and ``_v`` are unit vectors again
    and eval mode's ``sigma = u^T W v`` estimates the weight's largest singular value.

    Needed after averaging a copy's buffers (``AveragedModel(use_buffers=True)`` averages the
    vectors too: their norms drop below 1 and sigma comes out too small). With ``tolerance``,
    only layers whose vectors are further than that from unit length are re-iterated (an EMA
    copy saved before the training renormalised it), so healthy weights stay bit for bit."""
    for layer in module.modules():
        if not parametrize.is_parametrized(layer):
            continue
        for plist in layer.parametrizations.values():
            for p in plist:
                if isinstance(p, _SpectralNorm) and plist.original.ndim > 1:
                    if tolerance is not None and all(
                        abs(float(vec.norm()) - 1.0) <= tolerance for vec in (p._u, p._v)
                    ):
                        continue
                    w = plist.original.movedim(p.dim, 0).flatten(1)
                    for _ in range(p.n_power_iterations):
                        p._u.copy_(F.normalize(w @ p._v, dim=0, eps=p.eps))
                        p._v.copy_(F.normalize(w.mH @ p._u, dim=0, eps=p.eps))
    return module
