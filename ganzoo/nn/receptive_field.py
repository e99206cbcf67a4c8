"""Receptive fields and output sizes of discriminators: analytic for conv stacks, by probe for
any network.

Analytic: :class:`ConvGeometry` describes one conv or pooling layer along one axis;
:func:`output_side`, :func:`receptive_field` and :func:`smallest_input_side` follow a chain of
them, and :func:`conv_chain` reads the chain off a plain sequential stack of modules.

By probe: :func:`receptive_field_by_probe` back-propagates from the centre output pixel of each
branch of a discriminator (the ``forward(x) -> [[features..., logits], ...]`` contract) to its
input and measures the box of input pixels that get a nonzero gradient.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.utils import parametrize

from ganzoo.errors import GanzooError


@dataclass(frozen=True)
class ConvGeometry:
    """One conv or pooling layer along one axis (kernel, stride, padding, dilation)."""

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def span(self) -> int:
        """Input pixels one output pixel reads along this axis."""
        return self.dilation * (self.kernel - 1) + 1

    def output_side(self, side: int) -> int:
        """Output length for an input of length ``side`` (0 when the input is too short)."""
        return max(0, (side + 2 * self.padding - self.span) // self.stride + 1)


def output_side(side: int, layers: Iterable[ConvGeometry]) -> int:
    """Output length of a chain of layers for an input of length ``side`` (0: too short)."""
    for layer in layers:
        side = layer.output_side(side)
        if side <= 0:
            return 0
    return side


def receptive_field(layers: Iterable[ConvGeometry]) -> int:
    """Input pixels one output pixel of the chain depends on along this axis (borders ignored).

    The pix2pix 70x70 PatchGAN is three 4x4 stride-2 convs and two 4x4 stride-1 convs: 70.
    """
    field, jump = 1, 1
    for layer in layers:
        field += (layer.span - 1) * jump
        jump *= layer.stride
    return field


def smallest_input_side(layers: Iterable[ConvGeometry]) -> int:
    """The shortest input length for which the chain yields at least one output pixel."""
    layers = list(layers)
    high = 1
    while output_side(high, layers) < 1:
        high *= 2
    low = high // 2  # output_side(low) < 1 unless high == 1
    while high - low > 1:
        mid = (low + high) // 2
        if output_side(mid, layers) >= 1:
            high = mid
        else:
            low = mid
    return high


def _axis(value: int | tuple[int, ...], axis: int) -> int:
    return value if isinstance(value, int) else int(value[axis])


def conv_chain(modules: Iterable[nn.Module], axis: int = 0) -> list[ConvGeometry]:
    """The geometry along ``axis`` (0: height, 1: width) of every Conv2d / AvgPool2d /
    MaxPool2d in ``modules`` and their submodules, in registration order.

    Valid for stacks that run their modules in that order (``nn.Sequential`` and the like);
    other modules (norms, activations, attention with 1x1 convs) keep the size.
    """
    chain = []
    for top in modules:
        for m in top.modules():
            if isinstance(m, nn.Conv2d):
                kernel, dilation = _axis(m.kernel_size, axis), _axis(m.dilation, axis)
                if m.padding == "valid":
                    padding = 0
                elif m.padding == "same":  # odd spans only: even ones pad unevenly
                    padding = dilation * (kernel - 1) // 2
                else:
                    padding = _axis(m.padding, axis)  # type: ignore[arg-type]
                chain.append(ConvGeometry(kernel, _axis(m.stride, axis), padding, dilation))
            elif isinstance(m, nn.AvgPool2d | nn.MaxPool2d):
                if m.ceil_mode:
                    raise ValueError("conv_chain does not model ceil_mode pooling")
                stride = m.stride if m.stride else m.kernel_size
                chain.append(
                    ConvGeometry(
                        _axis(m.kernel_size, axis),
                        _axis(stride, axis),
                        _axis(m.padding, axis),
                        _axis(getattr(m, "dilation", 1), axis),
                    )
                )
    return chain


# -- by probe ---------------------------------------------------------------------------------

_NORMS = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _unparametrize(m: nn.Module) -> None:
    """Turn a parametrised module of a deep copy back into its plain class, holding its
    parametrised tensors as plain parameters. ``parametrize.remove_parametrizations`` cannot
    be used on a copy: it deletes the property from the injected class, which the copy shares
    with the original, and so breaks the original network."""
    values = {t: getattr(m, t).detach().clone() for t in m.parametrizations}  # type: ignore[union-attr]
    del m._modules["parametrizations"]
    m.__class__ = type(m).__bases__[0]
    for t, value in values.items():
        m.register_parameter(t, nn.Parameter(value))


def _probe_copy(discriminator: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``discriminator`` whose gradients cannot vanish by accident.

    In eval mode; norm layers replaced by identities (they mix statistics over the whole map,
    which is not the convolutional field); spectral-norm parametrisations removed; every
    weight set to ``1 / fan_in`` (positive, so every activation stays positive and every
    ReLU/LeakyReLU passes its gradient) and every bias to a small positive constant; max
    pooling replaced by average pooling (whose gradient reaches the whole window); every
    parameter named ``gamma`` (the residual scale of attention blocks) set to 0, so attention,
    which would make the field global once trained, is measured as the identity it starts as.
    """
    probe = copy.deepcopy(discriminator).to(dtype).eval()
    for name, m in list(probe.named_modules()):
        if parametrize.is_parametrized(m):
            _unparametrize(m)
        replacement: nn.Module | None = None
        if isinstance(m, _NORMS):
            replacement = nn.Identity()
        elif isinstance(m, nn.MaxPool2d):
            replacement = nn.AvgPool2d(
                m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode, count_include_pad=False
            )
        if replacement is not None and name:
            parent_name, _, child = name.rpartition(".")
            setattr(probe.get_submodule(parent_name), child, replacement)
    with torch.no_grad():
        for name, p in probe.named_parameters():
            leaf = name.rpartition(".")[2]
            if leaf == "gamma":
                p.zero_()
            elif leaf == "weight" and p.dim() >= 2:
                p.fill_(p.shape[0] / p.numel())
            elif leaf == "bias":
                p.fill_(0.01)
    return probe.requires_grad_(False)  # only the input's gradient is wanted


def _branch_logits(output: object) -> list[torch.Tensor]:
    """The logits of each branch of a discriminator's output (tensor, list, or list of lists)."""
    if isinstance(output, torch.Tensor):
        return [output]
    logits = []
    for branch in output:  # type: ignore[union-attr]
        logits.append(branch if isinstance(branch, torch.Tensor) else branch[-1])
    return logits


def probe_boxes(
    discriminator: nn.Module,
    in_channels: int,
    height: int,
    width: int,
    *,
    dtype: torch.dtype = torch.float64,
) -> list[tuple[int, int, int, int]]:
    """Per branch, the box ``(top, left, bottom, right)`` (inclusive, input pixels) of the
    input that the centre pixel ``(h // 2, w // 2)`` of the branch's logits depends on, for a
    ``1 x in_channels x height x width`` input. The box is clipped to the input.

    ``discriminator`` is left untouched (the probe runs on a copy, see :func:`_probe_copy`).
    """
    probe = _probe_copy(discriminator, dtype)
    device = next(probe.parameters(), torch.empty(0)).device
    x = torch.ones(1, in_channels, height, width, dtype=dtype, device=device, requires_grad=True)
    logits = _branch_logits(probe(x))
    boxes = []
    for i, out in enumerate(logits):
        oh, ow = out.shape[-2:]
        centre = out[0, :, oh // 2, ow // 2].sum()
        (grad,) = torch.autograd.grad(centre, x, retain_graph=i < len(logits) - 1)
        hit = grad[0].abs().sum(0) > 0
        rows = torch.nonzero(hit.any(1)).flatten()
        cols = torch.nonzero(hit.any(0)).flatten()
        if rows.numel() == 0:
            raise ValueError(f"branch {i}: its centre output pixel does not depend on the input")
        boxes.append((int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])))
    return boxes


def receptive_field_by_probe(
    discriminator: nn.Module,
    in_channels: int,
    height: int,
    width: int,
    *,
    max_side: int | None = None,
) -> list[tuple[int, int]]:
    """Per branch, ``(rf_h, rf_w)``: the input pixels that the centre pixel of the branch's
    patch logits sees, measured by back-propagation on a ``height x width`` input.

    A field larger than the input is clipped to it: at the crop size that is the field each
    patch actually has. With ``max_side``, a branch whose box touches the input border is
    probed again on inputs of twice the size (up to ``max_side``), giving its full field when
    the network takes larger inputs.
    """
    size = (height, width)
    probed = [(box, size) for box in probe_boxes(discriminator, in_channels, height, width)]
    while max_side is not None and any(_touches(box, at) for box, at in probed):
        size = (2 * size[0], 2 * size[1])
        if max(size) > max_side:
            break
        try:
            bigger = probe_boxes(discriminator, in_channels, *size)
        except (RuntimeError, ValueError, GanzooError):  # the network does not take larger inputs
            break
        probed = [
            (new, size) if _touches(box, at) else (box, at)
            for (box, at), new in zip(probed, bigger, strict=True)
        ]
    return [(bottom - top + 1, right - left + 1) for (top, left, bottom, right), _ in probed]


def _touches(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    top, left, bottom, right = box
    return top == 0 or left == 0 or bottom == size[0] - 1 or right == size[1] - 1
