"""Norm layers kept in step with channels_last activations on the CPU (the trainer's default).

Two of PyTorch's CPU norm kernels fall out of the layout the convolutions around them use:

* **Batch norm** is handed, by a U-Net's skip concatenation, a gradient that is a slice of the
  concatenation's: strided, for a channels_last tensor (or a batch of more than one). Its
  backward then takes a generic kernel 7-12x slower than its dense one: for a (1, 64, 128,
  128) bf16 channels_last tensor 4.3 ms against 0.4 ms plus the copy (docs/performance.md,
  "Dense gradients for batch norm"). A hook makes that gradient dense first.
* **Instance norm** computes in the plain (NCHW) layout and returns its output there, so every
  layer after it mixes layouts: each convolution copies its input back to channels_last and
  the activations' backward kernels run over mismatched strides (docs/performance.md,
  "Instance norm's output in its input's layout"). A hook returns the output in the input's
  layout (the same values, copied once).

The functions are unchanged; the kernels then taken sum in other orders (rounding-level
differences).
"""

from __future__ import annotations

import torch
from torch import nn

_LAYOUTS = {4: torch.channels_last, 5: torch.channels_last_3d}


def _layout(t: torch.Tensor) -> torch.memory_format:
    """The layout of ``t``: channels_last(_3d) where it is dense in that layout and not in the
    plain one, else contiguous."""
    channels_last = _LAYOUTS.get(t.dim())
    if channels_last is not None and not t.is_contiguous():
        if t.is_contiguous(memory_format=channels_last):
            return channels_last
    return torch.contiguous_format


def _dense_gradient(module: nn.Module, args: tuple, output: object) -> None:  # noqa: ARG001
    """Batch norm: the gradient reaching ``output`` made dense in its layout."""
    if isinstance(output, torch.Tensor) and output.requires_grad:
        layout = _layout(output)
        output.register_hook(lambda g: g.contiguous(memory_format=layout))


def _input_layout(module: nn.Module, args: tuple, output: object) -> object:  # noqa: ARG001
    """Instance norm: ``output`` in the layout of its input (None: as it is)."""
    if not (args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor)):
        return None
    layout = _layout(args[0])
    if layout is torch.contiguous_format or output.is_contiguous(memory_format=layout):
        return None
    return output.contiguous(memory_format=layout)


def channels_last_norms(net: nn.Module) -> int:
    """Hook every batch-norm layer of ``net`` (gradient made dense) and every instance-norm
    layer (output in its input's layout); parameters and state dict unchanged. Returns how
    many layers were hooked."""
    hooked = 0
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_hook(_dense_gradient)
        elif isinstance(module, nn.modules.instancenorm._InstanceNorm):
            module.register_forward_hook(_input_layout)
        else:
            continue
        hooked += 1
    return hooked
