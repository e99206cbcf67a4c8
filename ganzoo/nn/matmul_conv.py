"""Convolutions over a few positions run as one matrix multiply each, on the CPU.

At batch 1 the innermost layers of a U-Net hold most of its weights (a 1024 -> 512 4x4
transposed convolution: 8.4 M) but see only 1x1 to 8x8 positions. oneDNN's convolution
kernels are built for the opposite case and spend 2-5x the time a weight-bound layer needs
there (docs/performance.md, "Small convolutions as matrix multiplies"). As one GEMM over the
unfolded input (a convolution) or folded into the output (a transposed convolution), the
same layer reads its weight once per pass:

    conv:            out[(n, p), o]   = unfold(x)[(n, p), (kh, kw, i)] @ W[o, (kh, kw, i)]^T
    transposed conv: cols[(n, p), (kh, kw, o)] = x[(n, p), i] @ W[i, (kh, kw, o)];  out = fold(cols)

Both weight matrices are views of the weight's memory, NHWC (ganzoo's default) or NCHW.
It is the same function with the same parameters: products accumulate in float32 and round
once, as oneDNN's do (under bf16 autocast the overlapping sums of ``fold``/``unfold`` run in
float32 too). Only plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` are switched (their state
dicts are unchanged); a call on a GPU, with more than :data:`MAX_ROWS` output rows (images x
positions), groups, dilation or non-zero padding modes takes the module's own path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The most GEMM rows (batch x output positions of a convolution, batch x input positions of
#: a transposed convolution) that take the matrix-multiply path; above it oneDNN is faster
#: (measured on the development CPU, docs/performance.md).
MAX_ROWS = 64


def _autocast(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` in the dtype autocast would give it, cast as the 4-D tensor it is: its
    gradient then comes back through one same-layout cast (a cast of the 2-D view measured
    5x slower inside a training step)."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return weight.to(torch.get_autocast_dtype(device))
    return weight


def _nhwc(t: torch.Tensor) -> bool:
    return t.stride(1) == 1 and t.stride(3) == t.shape[1] > 1


def _layout(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The layout torch's convolutions give their output: channels_last when the input or the
    weight is (a 1x1 input is contiguous in both layouts)."""
    return torch.channels_last if _nhwc(x) or _nhwc(weight) else torch.contiguous_format


def _output_size(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int]:
    """(H_out, W_out) of a convolution of ``x`` (dilation 1)."""
    return tuple((x.shape[2 + i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in (0, 1))


def conv2d_as_matmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` for (N, C_in, H, W) ``x`` and
    (C_out, C_in, kH, kW) ``weight`` as one GEMM; output in the layout torch would give."""
    n, c_in = x.shape[:2]
    c_out, _, kh, kw = weight.shape
    ho, wo = _output_size(x, (kh, kw), stride, padding)
    # unfolded in float32, so that its backward (a fold) sums the overlaps in float32
    cols = F.unfold(x.float(), (kh, kw), padding=padding, stride=stride).to(x.dtype)
    weight = _autocast(x, weight)
    if _nhwc(weight):  # weight rows ordered (kh, kw, C_in): a view of NHWC memory
        cols = cols.view(n, c_in, kh, kw, ho * wo).permute(0, 4, 2, 3, 1)
        w2 = weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c_in)
    else:  # ordered (C_in, kh, kw): a view of NCHW memory, as unfold orders its rows
        cols = cols.transpose(1, 2)
        w2 = weight.reshape(c_out, c_in * kh * kw)
    cols = cols.reshape(n * ho * wo, kh * kw * c_in)
    out = cols @ w2.t() if bias is None else torch.addmm(bias, cols, w2.t())
    out = out.view(n, ho, wo, c_out).permute(0, 3, 1, 2)
    return out.contiguous(memory_format=_layout(x, weight))


def conv_transpose2d_as_matmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)`` for
    (N, C_in, H, W) ``x`` and (C_in, C_out, kH, kW) ``weight`` as one GEMM and a fold;
    output in the layout torch would give, in the GEMM's dtype."""
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = weight.shape
    rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c_in)
    weight = _autocast(x, weight)
    nhwc = _nhwc(weight)
    if nhwc:  # columns ordered (kh, kw, C_out): a view of NHWC memory
        w2 = weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
    else:  # ordered (C_out, kh, kw): a view of NCHW memory, as fold takes them
        w2 = weight.reshape(c_in, c_out * kh * kw)
    cols = rows @ w2  # (N*H*W, kh*kw*C_out)
    dtype = cols.dtype
    if nhwc:
        cols = cols.view(n, h * w, kh, kw, c_out).permute(0, 4, 2, 3, 1)
    else:
        cols = cols.view(n, h * w, c_out, kh, kw).permute(0, 2, 3, 4, 1)
    cols = cols.reshape(n, c_out * kh * kw, h * w).float()  # fold sums overlaps in float32
    size = (
        (h - 1) * stride[0] - 2 * padding[0] + kh + output_padding[0],
        (w - 1) * stride[1] - 2 * padding[1] + kw + output_padding[1],
    )
    out = F.fold(cols, size, (kh, kw), padding=padding, stride=stride)
    if bias is not None:
        out = out + bias.to(dtype).float().view(1, -1, 1, 1)
    return out.to(dtype).contiguous(memory_format=_layout(x, weight))


def _plain(module: nn.Module, x: torch.Tensor) -> bool:
    """True where the matrix-multiply path computes what ``module`` would."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and module.groups == 1
        and module.padding_mode == "zeros"
        and tuple(module.dilation) == (1, 1)
        and not isinstance(module.padding, str)
    )


class MatmulConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose calls over at most :data:`MAX_ROWS` output rows run as one GEMM."""

    def _conv_forward(self, x, weight, bias):  # noqa: ANN001 - nn.Conv2d's signature
        if _plain(self, x):
            ho, wo = _output_size(x, self.kernel_size, self.stride, self.padding)
            if x.shape[0] * ho * wo <= MAX_ROWS:
                return conv2d_as_matmul(x, weight, bias, self.stride, self.padding)
        return super()._conv_forward(x, weight, bias)


class MatmulConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` whose calls over at most :data:`MAX_ROWS` input rows run as
    one GEMM and a fold."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if _plain(self, x) and x.shape[0] * x.shape[2] * x.shape[3] <= MAX_ROWS:
            output_padding = self._output_padding(
                x, output_size, self.stride, self.padding, self.kernel_size, 2, self.dilation
            )
            return conv_transpose2d_as_matmul(
                x, self.weight, self.bias, self.stride, self.padding, tuple(output_padding)
            )
        return super().forward(x, output_size)


_SWAPS = {nn.Conv2d: MatmulConv2d, nn.ConvTranspose2d: MatmulConvTranspose2d}


def small_convolutions_as_matmuls(net: nn.Module) -> int:
    """Switch ``net``'s plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` modules (in place; their
    parameters, state-dict keys and behaviour on large inputs unchanged) to the
    matrix-multiply path for small inputs; returns how many were switched. Subclasses and
    parametrized modules (spectral norm) are left as they are."""
    switched = 0
    for module in net.modules():
        swap = _SWAPS.get(type(module))
        if swap is not None:
            module.__class__ = swap
            switched += 1
    return switched
