"""Spectral normalisation of every conv and linear layer of a network."""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every Conv2d / ConvTranspose2d / Linear in ``module`` (in place)."""
    for m in list(module.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if not parametrize.is_parametrized(m, "weight"):
                spectral_norm(m)
    return module
