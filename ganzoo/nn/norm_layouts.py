"""Norm layers kept in step with channels_last activations on the CPU (the trainer's default).

Two of PyTorch's CPU norm kernels fall out of the layout the convolutions around them use:

* **Batch norm** is handed, by a U-Net's skip concatenation, a gradient that is a slice of the
  concatenation's: strided, for a channels_last tensor (or a batch of more than one). Its
  backward then takes a generic kernel 7-12x slower than its dense one: for a (1, 64, 128,
  128) bf16 channels_last tensor 4.3 ms against 0.4 ms plus the copy (docs/performance.md,
  "Norm layers in channels_last"). A hook makes that gradient dense first.
* **Instance norm** reshapes its input to NCHW, computes there and answers NCHW, so every layer
  after it mixed layouts: each convolution copied its input back to channels_last and the
  activations' backward kernels ran over mismatched strides (docs/performance.md, "Norm layers
  in channels_last"). On a channels_last input it now normalises each sample with batch
  norm's channels_last kernel (one sample's batch statistics are its instance statistics):
  the same outputs (equal in every case measured), no layout change and, at batch 1, no copy;
  1.7-3.7x faster for the layer alone. Its gradient is made dense as batch norm's is.

The functions are unchanged; the kernels then taken sum in other orders (rounding-level
differences).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def _plain(g: torch.Tensor) -> torch.Tensor:
    return g.contiguous()


class ChannelsLastInstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps a channels_last input's layout: per sample, batch
    norm's kernel over that sample (its batch statistics are its instance statistics). Any
    other input (NCHW, or running statistics) takes the module's own path, its output copied
    to the input's layout and the gradient reaching it made plain: PyTorch's (2.14) instance
    norm returns a wrong input gradient for a batch of one when the gradient it is handed is
    channels_last (tests/test_norm_layouts.py measures it against the NCHW computation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layout = _layout(x)
        if layout is torch.channels_last and not self.track_running_stats:
            self._check_input_dim(x)
            parts = [
                F.batch_norm(part, None, None, self.weight, self.bias, True, 0.0, self.eps)
                for part in x.split(1)
            ]
            return parts[0] if len(parts) == 1 else torch.cat(parts)
        out = super().forward(x)
        if out.requires_grad:
            out.register_hook(_plain)
        return out.contiguous(memory_format=layout)


def channels_last_norms(net: nn.Module) -> int:
    """Switch every plain ``nn.InstanceNorm2d`` of ``net`` to :class:`ChannelsLastInstanceNorm2d`
    (in place) and hook it and every batch-norm layer (the gradient reaching its output made
    dense); parameters and state dict unchanged, a second call changes nothing. Returns how
    many layers were changed."""
    changed = 0
    for module in net.modules():
        if type(module) is nn.InstanceNorm2d:
            module.__class__ = ChannelsLastInstanceNorm2d
        elif not isinstance(module, (nn.modules.batchnorm._BatchNorm, ChannelsLastInstanceNorm2d)):
            continue
        if _dense_gradient not in module._forward_hooks.values():
            module.register_forward_hook(_dense_gradient)
            changed += 1
    return changed
