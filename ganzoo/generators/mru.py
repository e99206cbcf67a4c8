"""SketchyGAN's encoder-decoder of Masked Residual Units (Chen & Hays, CVPR 2018).

One MRU takes features ``x`` (C_x channels) and an image ``I`` at the same resolution:

    m  = sigmoid(Conv3x3([x, I]))          C_x channels   (what of x to show the new conv)
    n  = sigmoid(Conv3x3([x, I]))          d channels     (how much of the output is new)
    z  = f(Conv3x3([m * x, I]))            d channels     (f = norm, then ReLU)
    x' = Conv1x1(x) if C_x != d else x
    y  = (1 - n) * x' + n * z

These are the paper's equations (Sec. 4.1, the sigmoid-gated MRU). The network follows the
paper's outline and, where the paper leaves a choice, the authors' released code
(wchen342/SketchyGAN, ``models_mru.py``/``mru.py``):

- the image pyramid is 2x2 average pooling (the code's mean pooling / area resize);
- a 7x7 stem conv (no norm, no activation, as the code's ``h0``) maps the image to ngf channels;
- encoder level k (1..depth) is an MRU fed the image at its input resolution, followed by 2x2
  mean pooling (the paper's and the code's downsampling);
- decoder level k (depth-1..0) upsamples by nearest neighbour (the code's ``upsample``) and is
  an MRU (deMRU) whose image input is the image at its resolution concatenated with the
  encoder's output at that resolution (the U-Net skip; the code feeds skips this way);
- a 7x7 conv and tanh make the output.

Differences from the released code (wchen342/SketchyGAN ``src_single/models_mru.py`` and
``mru.py``), each deliberate, as this follows the paper's equations for paired translation:

- stem: the code's is a 7x7 *stride-2* conv to 8 channels on its 64x64 input (no norm, no
  activation); here a stride-1 7x7 conv to ``ngf`` channels.
- depth: the code has 4 encoder MRU levels of widths 64, 128, 256, 512 (5 halvings counting
  its stem) and 5 decoder levels of 384, 256, 128, 128, 64; here ``depth`` levels each way
  (default 4) of ``ngf * 2**k`` channels capped at ``max_channels``.
- blocks: the code's encoder uses ``mru_conv_block_v3`` (no output gate: ``x' + conv(act(norm(
  conv(act(norm(x + m * conv(I)))))))`` with a linear 1x1 projection ``x'``) and its decoder
  ``mru_deconv_block_v2`` (two conv-norm-activation layers for z, a conv-norm-activation 1x1
  projection); both replace the sigmoid gates by LeakyReLU(0.2) rescaled to [0, 1] over each
  map (min-max). Here every unit is the paper's sigmoid-gated MRU above.
- activation: the code's is miu-ReLU, ``(x + sqrt((1 - mu)^2 + x^2)) / 2`` with mu = 0.7;
  ``activation: miu_relu`` gives it, ReLU is the default.
- normalisation: the code uses class-conditional batch norm with the batch's statistics at
  test time too; here the ``norm`` chosen, unconditional.
- decoder inputs: the code feeds noise (a 256-d normal vector through a dense layer) at the
  coarsest level in place of the encoder's 4x4 features and skips only the 8, 16 and 32 pixel
  encoder outputs; here every level takes its encoder output and there is no noise.
- around it: the code's discriminator is an MRU critic with spectral norm, its losses a
  non-saturating GAN loss, an auxiliary classifier, an Inception perceptual term and a
  diversity term, Adam with betas (0, 0.9); ``recipes/sketchygan_mru.yaml`` keeps the pix2pix
  PatchGAN, losses and optimiser so that it differs from the reference in the generator alone.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import RegistryError
from ganzoo.generators.common import Attend, AttentionPath, Site, place_attention
from ganzoo.nn import AttentionSlots, Count, NormName, Width, conv_bias, norm_layer
from ganzoo.registry import Finish, register

PAPER = (
    "Chen & Hays, SketchyGAN: Towards Diverse and Realistic Sketch to Image Synthesis, "
    "CVPR 2018 (arXiv:1801.02753); released code wchen342/SketchyGAN"
)


class MiuReLU(nn.Module):
    """SketchyGAN's miu-ReLU: ``(x + sqrt((1 - mu)^2 + x^2)) / 2``, a smooth ReLU (0.15 at 0)."""

    def __init__(self, mu: float = 0.7) -> None:
        super().__init__()
        self.mu = mu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + torch.sqrt((1 - self.mu) ** 2 + x * x)) / 2


class MaskedResidualUnit(nn.Module):
    """``y = (1 - n) * x' + n * z`` (see the module docstring).

    ``forward(x, image)``: (N, C_x, H, W) and (N, C_I, H, W) -> (N, d, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        image_channels: int,
        out_channels: int,
        norm: NormName,
        activation: Literal["relu", "miu_relu"] = "relu",
    ) -> None:
        super().__init__()
        both = in_channels + image_channels
        self.mask = nn.Conv2d(both, in_channels, kernel_size=3, padding=1)
        self.gate = nn.Conv2d(both, out_channels, kernel_size=3, padding=1)
        self.conv = nn.Conv2d(both, out_channels, kernel_size=3, padding=1, bias=conv_bias(norm))
        self.norm = norm_layer(norm, out_channels)
        self.activation = nn.ReLU() if activation == "relu" else MiuReLU()
        self.project = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, kernel_size=1)
        )

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x_and_image = torch.cat([x, image], 1)
        m = torch.sigmoid(self.mask(x_and_image))
        n = torch.sigmoid(self.gate(x_and_image))
        z = self.activation(self.norm(self.conv(torch.cat([m * x, image], 1))))
        return (1 - n) * self.project(x) + n * z


@register("generator", "mru", paper=PAPER, finish=Finish())
class MRUGenerator(nn.Module):
    """SketchyGAN encoder-decoder of masked residual units fed the image at every scale.

    (N, C, H, W) -> (N, C', H, W) in [-1, 1]; sides must be multiples of ``2**depth``.
    Level k has ``min(ngf * 2**k, max_channels)`` channels. Attention sites: encoder = stem (H)
    and each encoder level after pooling (H/2 .. H/2**depth); decoder = each decoder level
    (H/2**(depth-1) .. H); at a resolution both produce the block goes on ``attention_path``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        depth: Count = 4,
        ngf: Width = 64,
        max_channels: Width = 512,
        norm: NormName = "batch",
        activation: Literal["relu", "miu_relu"] = "relu",
        attention_path: AttentionPath = "decoder",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise RegistryError(f"mru: depth must be at least 1, got {depth}")
        self.depth = depth
        width = [min(ngf * 2**k, max_channels) for k in range(depth + 1)]
        self.stem = nn.Conv2d(in_channels, width[0], kernel_size=7, padding=3)
        self.encoder = nn.ModuleList(
            MaskedResidualUnit(width[k - 1], in_channels, width[k], norm, activation)
            for k in range(1, depth + 1)
        )
        self.decoder = nn.ModuleList(  # coarsest first
            MaskedResidualUnit(width[k + 1], in_channels + width[k], width[k], norm, activation)
            for k in range(depth - 1, -1, -1)
        )
        self.out = nn.Sequential(
            nn.Conv2d(width[0], out_channels, kernel_size=7, padding=3), nn.Tanh()
        )
        keys = [f"encoder{k}" for k in range(depth + 1)]
        keys += [f"decoder{k}" for k in range(depth - 1, -1, -1)]
        sites = [Site("encoder", 2**k, width[k]) for k in range(depth + 1)]
        sites += [Site("decoder", 2**k, width[k]) for k in range(depth - 1, -1, -1)]
        placed = place_attention(attention, sites, attention_path, f"mru with depth={depth}")
        self.attention = nn.ModuleDict(
            {key: block for key, block in zip(keys, placed, strict=True) if block is not None}
        )
        self.size_divisor = self.min_side = 2**depth

    def _attend(self, key: str, h: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        block: Attend | None = self.attention[key] if key in self.attention else None
        return h if block is None else block(h, condition)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        images = [x]
        for _ in range(self.depth):
            images.append(F.avg_pool2d(images[-1], 2))
        h = self._attend("encoder0", self.stem(x), x)
        skips = [h]
        for k, unit in enumerate(self.encoder, start=1):
            h = self._attend(f"encoder{k}", F.avg_pool2d(unit(h, images[k - 1]), 2), x)
            skips.append(h)
        for k, unit in zip(range(self.depth - 1, -1, -1), self.decoder, strict=True):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = self._attend(f"decoder{k}", unit(h, torch.cat([images[k], skips[k]], 1)), x)
        return self.out(h)
