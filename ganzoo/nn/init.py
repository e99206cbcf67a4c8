"""Weight initialisation of the pix2pix reference (``networks.init_weights``)."""

from __future__ import annotations

from typing import Literal

from torch import nn

InitName = Literal["normal", "xavier", "kaiming", "orthogonal"]


def init_weights(
    module: nn.Module, init: InitName = "normal", gain: float = 0.02, zero_bias: bool = True
) -> None:
    """Initialise every conv/linear weight by ``init`` and every BatchNorm as N(1, gain), bias 0.

    ``zero_bias``: conv/linear biases become 0 (pix2pix's ``init_weights``); False keeps
    PyTorch's default uniform biases (pix2pixHD's ``weights_init`` never touches them). Call it
    before :func:`ganzoo.nn.apply_spectral_norm`, which re-parametrises the weights.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if init == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif init == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif init == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=gain)
            else:
                raise ValueError(f"unknown init '{init}'")
            if m.bias is not None and zero_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
