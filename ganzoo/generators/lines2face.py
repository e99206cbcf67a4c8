"""The LinesToFacePhoto generator (Li et al., ACM MM 2019), as LiYuhangUSTC/Lines2Face builds it
(``network.py`` ``create_generator_mru_res``, ``models.py`` ``mru`` / ``demru``, ``ops.py``
``resblock_dialated_sn``). With ``ngf`` 64 at 256x256::

    e1   conv 4x4/2 (reflect pad 1)                        3 -> 64       128
    e2-6 strided MRU, fed the condition at its input size    -> 128, 256, 384, 512, 512
                                                                           64, 32, 16, 8, 4
    8 x  dilated residual block: [conv 3x3, dilation 2, reflect pad 2, spectral norm ->
         instance norm -> ReLU -> conv (the same) -> instance norm] + x         512 at 4
    d6   deMRU (no skip)                                     512 -> 512      8
    d5-2 deMRU of cat(previous, e5 .. e2)                   -> 512, 256, 128, 128  16 .. 128
    [attention after d2: CSAM in the paper, at 128x128 with 128 channels]
    out  ReLU(cat(d2, e1)) -> transposed conv 4x4/2 -> tanh                  3 at 256

A strided MRU (``models.mru``) takes features ``x`` (C channels) and the condition ``I``
resized to them: ``m = sigmoid(conv3x3(cat(x, I)))`` (C channels, stride 1), ``n =
sigmoid(conv3x3/2(cat(x, I)))``, ``z = relu(conv3x3/2(cat(m * x, I)))``, ``x' = conv1x1/2(x)``
and ``y = x' * (1 - n) + z * n``; the deMRU (``models.demru``) is the same with 3x3/2 and 1x1/2
*transposed* convs for ``n``, ``z`` and ``x'``. Neither has normalisation. 97,064,515
parameters without attention (97,083,092 with the released code's self-attention, 97,083,524
with the paper's CSAM).

Deviations, none changing a shape or a count: TensorFlow's ``SAME`` padding of the strided 3x3
convs pads (0, 1) and is reproduced exactly (:class:`SameConv2d`, :class:`SameConvTranspose2d`);
the condition is resized with PyTorch's bilinear sampling (half-pixel centres, src = (dst +
0.5) * scale - 0.5) where TF 1's ``resize_images`` (bilinear, ``align_corners=False``, no
half-pixel centres) samples asymmetrically at src = dst * scale: at the generator's 2^k
downscales it takes pixel (2^k i, 2^k j) where ganzoo averages the central 2 x 2 pixels of
each 2^k x 2^k block; instance norm uses PyTorch's epsilon 1e-5 (TF's ``instance_norm``:
1e-6); ``init`` (default N(0, 0.02)) initialises every conv, where the released code draws the
MRUs with slim's Xavier default; the encoder's first LeakyReLU, which the released code
computes and then discards, is left out.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import RegistryError
from ganzoo.generators.common import Attend, AttentionPath, Site, place_attention
from ganzoo.nn import AttentionSlots, Count, Width
from ganzoo.registry import Finish, register

PAPER = (
    "Li et al., LinesToFacePhoto: Face Photo Generation from Lines with Conditional "
    "Self-Attention Generative Adversarial Network, ACM MM 2019 (arXiv:1910.08914); layers of "
    "LiYuhangUSTC/Lines2Face create_generator_mru_res"
)


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (before, after) of one side."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A conv with TensorFlow's ``SAME`` padding (the extra pixel after, not before).

    A strided 1x1 conv runs as subsampling and a stride-1 conv (the same numbers): PyTorch
    2.14-2.15's CPU kernel for the former corrupts memory in its backward pass on
    channels-last maps of few channels.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size == (1, 1):
            sh, sw = self.stride
            return F.conv2d(x[..., ::sh, ::sw], self.weight, self.bias)
        top, bottom = _same_pads(x.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = _same_pads(x.shape[-1], self.kernel_size[1], self.stride[1])
        return super().forward(F.pad(x, (left, right, top, bottom)))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """TensorFlow's ``conv2d_transpose`` with ``SAME`` padding and stride s: output ``s * H``.

    Built with padding 0; the full transposed output is cropped by the SAME padding of the
    forward conv it is the gradient of (``before`` rows in front, the rest behind).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = super().forward(x)
        out_h, out_w = x.shape[-2] * self.stride[0], x.shape[-1] * self.stride[1]
        top, _ = _same_pads(out_h, self.kernel_size[0], self.stride[0])
        left, _ = _same_pads(out_w, self.kernel_size[1], self.stride[1])
        # rows the forward conv never read get no gradient: zeros (a 1x1 stride-2 kernel)
        short_h = max(0, top + out_h - y.shape[-2])
        short_w = max(0, left + out_w - y.shape[-1])
        if short_h or short_w:
            y = F.pad(y, (0, short_w, 0, short_h))
        return y[..., top : top + out_h, left : left + out_w]


def _resized(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if image.shape[-2:] == like.shape[-2:]:
        return image.to(like.dtype)
    return F.interpolate(
        image.to(like.dtype), size=like.shape[-2:], mode="bilinear", align_corners=False
    )


class StridedMRU(nn.Module):
    """Lines2Face's MRU (or deMRU with ``up=True``): (N, C, H, W) features and the condition
    image -> (N, C', H/2, W/2) (or 2H, 2W); see the module docstring."""

    def __init__(self, channels: int, image_channels: int, out_channels: int, up: bool) -> None:
        super().__init__()
        both = channels + image_channels
        strided = SameConvTranspose2d if up else SameConv2d
        self.mask = SameConv2d(both, channels, 3)
        self.gate = strided(both, out_channels, 3, stride=2)
        self.conv = strided(both, out_channels, 3, stride=2)
        self.shortcut = strided(channels, out_channels, 1, stride=2)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        image = _resized(image, x)
        x_image = torch.cat([x, image], 1)
        m = torch.sigmoid(self.mask(x_image))
        n = torch.sigmoid(self.gate(x_image))
        z = torch.relu(self.conv(torch.cat([x * m, image], 1)))
        return self.shortcut(x) * (1 - n) + z * n


class DilatedResidualBlock(nn.Module):
    """``x + IN(conv(relu(IN(conv(x)))))``, 3x3 convs of dilation 2 with reflection padding,
    affine instance norm (Lines2Face ``resblock_dialated_sn``). Shape kept."""

    def __init__(self, channels: int, dilation: int = 2) -> None:
        super().__init__()

        def conv() -> nn.Conv2d:
            return nn.Conv2d(
                channels, channels, 3, padding=dilation, dilation=dilation, padding_mode="reflect"
            )

        self.body = nn.Sequential(
            conv(),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            conv(),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@register("generator", "lines2face", paper=PAPER, finish=Finish(spectral_norm=True))
class LinesToFaceGenerator(nn.Module):
    """LinesToFacePhoto's MRU encoder, dilated residual trunk and deMRU decoder (see the module
    docstring); (N, C, H, W) -> (N, C', H, W) in [-1, 1], sides multiples of 64 and at least
    ``64 * (dilation + 1)`` (192 by default: the trunk's reflection padding needs 3x3 maps).

    ``spectral_norm`` puts spectral norm where the released code has it: on the residual
    blocks' convs and on any attention block (it is on by default there, ``sn=True``).
    Attention sites: encoder outputs e1..e6 (H/2 .. H/64); decoder outputs d6..d2
    (H/32 .. H/2). The paper's CSAM goes after d2: ``{block: conditional_self_attention,
    resolution: H/2}``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: Width = 64,
        n_blocks: Count = 8,
        dilation: Count = 2,
        attention_path: AttentionPath = "decoder",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        if dilation < 1:
            raise RegistryError(f"lines2face: dilation must be at least 1, got {dilation}")
        enc = [ngf, 2 * ngf, 4 * ngf, 6 * ngf, 8 * ngf, 8 * ngf]  # e1 .. e6
        dec = [8 * ngf, 8 * ngf, 4 * ngf, 2 * ngf, 2 * ngf]  # d6 .. d2
        self.first = nn.Conv2d(in_channels, enc[0], 4, stride=2, padding=1, padding_mode="reflect")
        self.encoder = nn.ModuleList(
            StridedMRU(enc[i - 1], in_channels, enc[i], up=False) for i in range(1, 6)
        )
        self.middle = nn.Sequential(
            *(DilatedResidualBlock(enc[5], dilation) for _ in range(n_blocks))
        )
        skips = [0, enc[4], enc[3], enc[2], enc[1]]  # d6 has none; d5 .. d2 take e5 .. e2
        ins = [enc[5]] + [dec[i - 1] + skips[i] for i in range(1, 5)]
        self.decoder = nn.ModuleList(
            StridedMRU(ins[i], in_channels, dec[i], up=True) for i in range(5)
        )
        self.out = nn.ConvTranspose2d(dec[4] + enc[0], out_channels, 4, stride=2, padding=1)
        sites = [Site("encoder", 2 ** (i + 1), enc[i]) for i in range(6)]
        sites += [Site("decoder", 2 ** (5 - i), dec[i]) for i in range(5)]
        keys = [f"e{i + 1}" for i in range(6)] + [f"d{6 - i}" for i in range(5)]
        placed = place_attention(attention, sites, attention_path, "lines2face")
        self.attention = nn.ModuleDict(
            {key: block for key, block in zip(keys, placed, strict=True) if block is not None}
        )
        # the trunk's reflection padding needs maps larger than the dilation: H/64 > dilation
        self.size_divisor = 64
        self.min_side = 64 * (dilation + 1) if n_blocks else 64

    def spectral_norm_modules(self, mode: bool | str) -> list[nn.Module]:
        """Where the released code has spectral norm: the residual blocks and attention."""
        return [self.middle, self.attention]

    def _attend(self, key: str, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        block: Attend | None = self.attention[key] if key in self.attention else None
        return h if block is None else block(h, condition)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        h = self._attend("e1", self.first(x), x)
        encoded = [h]
        for i, unit in enumerate(self.encoder, start=2):
            h = self._attend(f"e{i}", unit(h, x), x)
            encoded.append(h)
        h = self.middle(h)
        for i, unit in enumerate(self.decoder):
            if i:  # d5 .. d2 see the encoder output of their resolution
                h = torch.cat([h, encoded[5 - i]], 1)
            h = self._attend(f"d{6 - i}", unit(h, x), x)
        return torch.tanh(self.out(torch.relu(torch.cat([h, encoded[0]], 1))))
