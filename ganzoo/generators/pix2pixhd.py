"""pix2pixHD's generators (Wang et al. 2018): the global G1 and the coarse-to-fine local enhancer
G2, as NVIDIA/pix2pixHD ``GlobalGenerator`` and ``LocalEnhancer`` (models/networks.py).

Global generator:

    ReflectionPad(3) -> Conv 7x7 (ngf) -> norm -> ReLU
    n_downsample x [Conv 3x3/2 (channels x2) -> norm -> ReLU]
    n_blocks x ResnetBlock(ngf * 2**n_downsample)
    n_downsample x [ConvTranspose 3x3/2, output_padding 1 (channels /2) -> norm -> ReLU]
    ReflectionPad(3) -> Conv 7x7 (out_channels) -> tanh

Unlike the pix2pix ResNet generator every conv has a bias whatever the norm (the reference
builds them with PyTorch's default), biases keep PyTorch's default initialisation (pix2pixHD's
``weights_init`` only draws conv weights), and the defaults are pix2pixHD's: ``n_downsample_global``
4, ``n_blocks_global`` 9, instance norm. The layer list and state-dict keys are the reference's.

Local enhancer (``pix2pixhd_local``), for 1024x2048 in the paper: the global generator built
with ``ngf * 2**n_local_enhancers`` channels, without its last three layers (pad, conv, tanh),
runs on the input average-pooled ``n_local_enhancers`` times (``AvgPool2d(3, 2, 1,
count_include_pad=False)``); enhancer ``n`` (outermost last) adds its own downsampling of the
input at its resolution (``model{n}_1``: 7x7 conv, one stride-2 conv) to the coarser output
and refines it (``model{n}_2``: ``n_blocks_local`` residual blocks, a transposed conv, and the
output layers in the last one). pix2pixHD trains it from a trained global generator
(``--load_pretrain``: ``train.init_from`` here, matching ``model.*`` by name) with the global
part frozen for ``niter_fix_global`` epochs (``optim.train_only: {generator: ["model1_*"],
epochs: N}``, G's optimizer restarting when the phase ends, as ``update_fixed_params``), then
jointly.
"""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.errors import RegistryError
from ganzoo.generators.common import AttentionPath
from ganzoo.generators.resnet import ResnetBlock, ResnetStack
from ganzoo.nn import AttentionSlots, Count, NormName, Width, init_weights, norm_layer
from ganzoo.registry import Finish, register

PAPER = (
    "Wang et al., High-Resolution Image Synthesis and Semantic Manipulation with Conditional "
    "GANs, CVPR 2018 (arXiv:1711.11585); layers of NVIDIA/pix2pixHD GlobalGenerator"
)


#: pix2pixHD's ``weights_init`` draws conv weights only: biases keep PyTorch's default.
HD_FINISH = Finish(zero_bias=False)


@register("generator", "pix2pixhd_global", paper=PAPER, finish=HD_FINISH)
class GlobalGenerator(ResnetStack):
    """pix2pixHD global generator: n_downsample stride-2 convs, n_blocks residual blocks.

    (N, C, H, W) -> (N, C', H, W) in [-1, 1]; sides must be multiples of ``2**n_downsample``
    and at least ``2**(n_downsample+1)``. Attention sites: see
    :class:`~ganzoo.generators.resnet.ResnetStack`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: Width = 64,
        n_downsample: Count = 4,
        n_blocks: Count = 9,
        norm: NormName = "instance",
        attention_path: AttentionPath = "decoder",
        attention: AttentionSlots | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            name=f"pix2pixhd_global with n_downsample={n_downsample}",
            ngf=ngf,
            n_downsampling=n_downsample,
            n_blocks=n_blocks,
            norm=norm,
            dropout=False,
            bias=True,
            attention_path=attention_path,
            attention=attention,
        )


@register(
    "generator",
    "pix2pixhd_local",
    paper=PAPER.replace("GlobalGenerator", "LocalEnhancer"),
    finish=HD_FINISH,
)
class LocalEnhancer(nn.Module):
    """pix2pixHD local enhancer G2 (see the module docstring): ``n_local_enhancers`` refinement
    stages around a global generator of ``ngf * 2**n_local_enhancers`` channels.

    (N, C, H, W) -> (N, C', H, W) in [-1, 1]; sides must be multiples of
    ``2**(n_downsample_global + n_local_enhancers)``. State-dict keys are the reference's
    (``model.*``, ``model1_1.*``, ``model1_2.*``), so its checkpoints import. No attention.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: Width = 32,
        n_downsample_global: Count = 4,
        n_blocks_global: Count = 9,
        n_local_enhancers: Count = 1,
        n_blocks_local: Count = 3,
        norm: NormName = "instance",
    ) -> None:
        super().__init__()
        n_local = n_local_enhancers
        if n_local < 1:
            raise RegistryError(
                f"pix2pixhd_local: n_local_enhancers must be at least 1, got {n_local}"
            )
        global_g = GlobalGenerator(
            in_channels,
            out_channels,
            ngf=ngf * 2**n_local,
            n_downsample=n_downsample_global,
            n_blocks=n_blocks_global,
            norm=norm,
        )
        # drawn as when the global generator finished itself (a seed gives the same weights as
        # before the builder finished networks); the builder initialises everything again
        init_weights(global_g, "normal", 0.02, zero_bias=False)
        self.model = global_g.model[:-3]  # without the final pad, conv and tanh
        self.n_local_enhancers = n_local
        for n in range(1, n_local + 1):
            width = ngf * 2 ** (n_local - n)
            down = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(in_channels, width, kernel_size=7),
                norm_layer(norm, width),
                nn.ReLU(True),
                nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1),
                norm_layer(norm, width * 2),
                nn.ReLU(True),
            ]
            up: list[nn.Module] = [
                ResnetBlock(width * 2, norm, dropout=False, bias=True)
                for _ in range(n_blocks_local)
            ]
            up += [
                nn.ConvTranspose2d(
                    width * 2, width, kernel_size=3, stride=2, padding=1, output_padding=1
                ),
                norm_layer(norm, width),
                nn.ReLU(True),
            ]
            if n == n_local:
                up += [
                    nn.ReflectionPad2d(3),
                    nn.Conv2d(ngf, out_channels, kernel_size=7),
                    nn.Tanh(),
                ]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)
        divisor = 2 ** (n_downsample_global + n_local)
        self.size_divisor = divisor
        self.min_side = max(4 * 2**n_local, 2 * divisor if n_blocks_global else divisor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1]."""
        pyramid = [x]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1], pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            down = getattr(self, f"model{n}_1")
            up = getattr(self, f"model{n}_2")
            out = up(down(pyramid[self.n_local_enhancers - n]) + out)
        return out
