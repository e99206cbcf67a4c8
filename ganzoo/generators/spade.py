"""The SPADE generator (Park et al., CVPR 2019), as NVlabs/SPADE ``SPADEGenerator``
(``models/networks/generator.py``), ``SPADEResnetBlock`` (``architecture.py``) and ``SPADE``
(``normalization.py``), without the VAE style encoder (the official default ``use_vae`` off).

With ``ngf`` (nf) 64, ``num_upsampling_layers`` ``normal`` (5 doublings) at 256x256::

    label map -> nearest resize to H/32 x W/32 -> fc: conv 3x3 (16 nf)         8 x 8
    head_0      SPADE block 16nf -> 16nf                                       8
    up, G_middle_0 16nf -> 16nf       ('more', 'most': one more up here)       16
    G_middle_1  16nf -> 16nf                                                   16
    up, up_0    16nf -> 8nf                                                    32
    up, up_1    8nf -> 4nf                                                     64
    up, up_2    4nf -> 2nf                                                     128
    up, up_3    2nf -> nf                                                      256
    ('most': up, up_4 nf -> nf/2)
    conv_img: LeakyReLU(0.2) -> conv 3x3 (out_channels) -> tanh

``up`` is a nearest 2x upsampling. A SPADE block (``SPADEResnetBlock``) runs
``conv_1(act(norm_1(conv_0(act(norm_0(x))))))`` plus a shortcut, ``act`` LeakyReLU(0.2), the
middle width ``min(fin, fout)``; when ``fin != fout`` the shortcut is learned,
``conv_s(norm_s(x))`` with a bias-free 1x1 ``conv_s``. Spectral norm (``spectral``, the
``spectral`` prefix of the official ``norm_G``) wraps the block's three convs only. A SPADE
layer normalises ``x`` without parameters (``norm``) and modulates it by the label map resized
(nearest) to ``x``: ``a = ReLU(conv(seg))`` (``nhidden`` channels), ``out = norm(x) * (1 +
conv_gamma(a)) + conv_beta(a)``, all three convs ``kernel_size`` square. The official default
``norm_G`` is ``spectralspadesyncbatch3x3``: ``norm="syncbatch"`` (a BatchNorm2d the trainer
turns into SyncBatchNorm under DDP), ``spectral=True``, ``kernel_size=3``; ``nhidden`` is
hard-coded 128 there. Weights: Xavier normal with gain 0.02, biases 0 (``init_type`` xavier,
``init_variance`` 0.02), registry metadata the builder applies (:mod:`ganzoo.build`),
drawing the weights before spectral norm; the official code wraps spectral norm while it builds
the layers and ``init_weights`` then draws into the shared original weights, so the weights
are the same distribution, the RNG order differs.

Sizes: the official code derives the starting grid from ``crop_size`` and ``aspect_ratio``
(``sw = crop_size // 2**n``, ``sh = round(sw / aspect_ratio)``); here it comes from the input,
``H / 2**n`` x ``W / 2**n``, so both sides must be multiples of ``2**n`` (n = 5, 6, 7 for
normal, more, most), and at least ``2**(n+1)`` with instance norm (which needs two pixels).
The input is the label map as the official ``input_semantics``: one-hot classes (plus
instance edges when the data adds them), ``in_channels`` = ``semantic_nc``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.errors import RegistryError, SizeError
from ganzoo.nn import NormName, Width, check_image_size
from ganzoo.registry import Finish, register

PAPER = (
    "Park et al., Semantic Image Synthesis with Spatially-Adaptive Normalization, CVPR 2019 "
    "(arXiv:1903.07291); layers of NVlabs/SPADE SPADEGenerator"
)

UpsamplingLayers = Literal["normal", "more", "most"]

#: Doublings of the starting grid per ``num_upsampling_layers`` (``compute_latent_vector_size``).
DOUBLINGS: dict[str, int] = {"normal": 5, "more": 6, "most": 7}


def param_free_norm(norm: NormName, channels: int) -> nn.Module:
    """SPADE's normalisation without affine parameters: batch/syncbatch (running statistics
    kept, as the official ``affine=False`` BatchNorm), instance, or none."""
    if norm in ("batch", "syncbatch"):
        return nn.BatchNorm2d(channels, affine=False)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if norm == "none":
        return nn.Identity()
    raise RegistryError(f"spade: unknown norm '{norm}'; use batch, syncbatch, instance or none")


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: ``(N, C, H, W)`` features and ``(N, L, H', W')`` label
    map -> ``(N, C, H, W)``, ``norm(x) * (1 + gamma(seg)) + beta(seg)``."""

    def __init__(
        self, channels: int, label_channels: int, norm: NormName, nhidden: int, kernel_size: int
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.param_free_norm = param_free_norm(norm, channels)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_channels, nhidden, kernel_size, padding=pad), nn.ReLU()
        )
        self.mlp_gamma = nn.Conv2d(nhidden, channels, kernel_size, padding=pad)
        self.mlp_beta = nn.Conv2d(nhidden, channels, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = self.param_free_norm(x)
        seg = F.interpolate(seg.to(x.dtype), size=x.shape[-2:], mode="nearest")
        hidden = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResnetBlock(nn.Module):
    """``(N, fin, H, W)`` and the label map -> ``(N, fout, H, W)``: two SPADE -> LeakyReLU ->
    conv 3x3 steps plus the shortcut (learned when ``fin != fout``)."""

    def __init__(
        self,
        fin: int,
        fout: int,
        label_channels: int,
        norm: NormName,
        nhidden: int,
        kernel_size: int,
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_channels, norm, nhidden, kernel_size)
        self.norm_1 = SPADE(fmiddle, label_channels, norm, nhidden, kernel_size)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_channels, norm, nhidden, kernel_size)

    def convs(self) -> list[nn.Conv2d]:
        """The convs that take spectral norm (the official ``'spectral' in norm_G``)."""
        return [self.conv_0, self.conv_1, *([self.conv_s] if self.learned_shortcut else [])]

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


#: The official ``init_type`` xavier, ``init_variance`` 0.02, and ``norm_G``'s ``spectral``
#: prefix (the recipe key ``spectral``), on by default.
SPADE_FINISH = Finish(spectral_norm=True, init="xavier", spectral_key="spectral")


@register("generator", "spade", paper=PAPER, finish=SPADE_FINISH)
class SPADEGenerator(nn.Module):
    """SPADE generator (see the module docstring): a label map drives every normalisation.

    (N, in_channels, H, W) label map (one-hot, values in [0, 1]) -> (N, out_channels, H, W) in
    [-1, 1]; sides must be multiples of ``2**5``, ``2**6`` or ``2**7`` for
    ``num_upsampling_layers`` normal, more, most.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: Width = 64,
        num_upsampling_layers: UpsamplingLayers = "normal",
        norm: NormName = "syncbatch",
        nhidden: Width = 128,
        kernel_size: Literal[1, 3, 5, 7] = 3,
    ) -> None:
        super().__init__()
        if num_upsampling_layers not in DOUBLINGS:
            raise RegistryError(
                f"spade: num_upsampling_layers must be normal, more or most, "
                f"got {num_upsampling_layers!r}"
            )
        nf = ngf
        self.num_upsampling_layers = num_upsampling_layers

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, in_channels, norm, nhidden, kernel_size)

        self.fc = nn.Conv2d(in_channels, 16 * nf, 3, padding=1)
        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if num_upsampling_layers == "most":
            if nf < 2:
                raise RegistryError("spade: num_upsampling_layers 'most' needs ngf of at least 2")
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, out_channels, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

        divisor = 2 ** DOUBLINGS[num_upsampling_layers]
        self.size_divisor = divisor
        # instance norm needs more than one pixel: a 2x1 starting grid at least
        self.min_side = 2 * divisor if norm == "instance" else divisor

    def spectral_norm_modules(self, mode: bool | str) -> list[nn.Module]:
        """The SPADE blocks' convs (the official ``spectral`` of ``norm_G``), not ``fc``,
        ``conv_img`` nor the SPADE layers' convs."""
        return [c for m in self.modules() if isinstance(m, SPADEResnetBlock) for c in m.convs()]

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """(sh, sw): the grid the trunk starts from for an ``height x width`` output, or a
        one-line :class:`~ganzoo.errors.SizeError` if the sides are not multiples of 2**n."""
        check_image_size(
            self, f"spade with num_upsampling_layers={self.num_upsampling_layers}", height, width
        )
        return height // self.size_divisor, width // self.size_divisor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) label map -> (N, out_channels, H, W) in [-1, 1]."""
        seg = x
        sh, sw = self.latent_size(x.shape[-2], x.shape[-1])
        first_norm = self.head_0.norm_0.param_free_norm  # SyncBatchNorm (DDP) pools ranks
        if self.training and isinstance(first_norm, nn.BatchNorm2d) and x.shape[0] * sh * sw == 1:
            raise SizeError(
                f"spade cannot train on one {x.shape[-2]}x{x.shape[-1]} image with batch norm: "
                f"its {sh}x{sw} starting grid leaves one value per channel to normalise; set "
                f"data.batch_size to 2 or more, or data.crop_size to {2 * self.size_divisor}"
            )
        out = self.fc(F.interpolate(seg, size=(sh, sw), mode="nearest"))
        out = self.head_0(out, seg)
        out = self.G_middle_0(self.up(out), seg)
        if self.num_upsampling_layers in ("more", "most"):
            out = self.up(out)
        out = self.G_middle_1(out, seg)
        for name in ("up_0", "up_1", "up_2", "up_3"):
            out = getattr(self, name)(self.up(out), seg)
        if self.num_upsampling_layers == "most":
            out = self.up_4(self.up(out), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(out, 0.2)))
