"""Weights stored in the autocast dtype for inference: cast once instead of at every call.

Under bf16 (or fp16) autocast every convolution casts its fp32 weight at every call: for
``unet_256`` at batch 1 on the CPU that is 54 M weights read and written again per image.
An inference-only network can hold them in that dtype: autocast then finds nothing to cast,
and the results are bit for bit the same (the same rounding, done once). Normalisation layers,
parametrized (spectral-normed) layers and any other parameter stay as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.nn.matmul_conv import MatmulConv2d, MatmulConvTranspose2d

_CAST = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, MatmulConv2d, MatmulConvTranspose2d)


def weights_in(net: nn.Module, dtype: torch.dtype) -> int:
    """Cast the weight and bias of ``net``'s plain convolution and linear layers to ``dtype``
    in place (for inference under autocast to ``dtype``); returns how many layers."""
    cast = 0
    for module in net.modules():
        if type(module) in _CAST:
            module.to(dtype)
            cast += 1
    return cast
