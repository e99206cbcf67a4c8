"""pix2pixHD's global generator G1 (Wang et al. 2018), as NVIDIA/pix2pixHD ``GlobalGenerator``.

    ReflectionPad(3) -> Conv 7x7 (ngf) -> norm -> ReLU
    n_downsample x [Conv 3x3/2 (channels x2) -> norm -> ReLU]
    n_blocks x ResnetBlock(ngf * 2**n_downsample)
    n_downsample x [ConvTranspose 3x3/2, output_padding 1 (channels /2) -> norm -> ReLU]
    ReflectionPad(3) -> Conv 7x7 (out_channels) -> tanh

Unlike the pix2pix ResNet generator every conv has a bias whatever the norm (the reference
builds them with PyTorch's default), biases keep PyTorch's default initialisation (pix2pixHD's
``weights_init`` only draws conv weights), and the defaults are pix2pixHD's: ``n_downsample_global``
4, ``n_blocks_global`` 9, instance norm. The layer list and state-dict keys are the reference's.
"""

from __future__ import annotations

from ganzoo.generators.common import AttentionPath
from ganzoo.generators.resnet import ResnetStack
from ganzoo.nn import AttentionSpec, Count, InitName, NormName, Width
from ganzoo.registry import register

PAPER = (
    "Wang et al., High-Resolution Image Synthesis and Semantic Manipulation with Conditional "
    "GANs, CVPR 2018 (arXiv:1711.11585); layers of NVIDIA/pix2pixHD GlobalGenerator"
)


@register("generator", "pix2pixhd_global", paper=PAPER)
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
        spectral_norm: bool = False,
        init: InitName = "normal",
        init_gain: float = 0.02,
        attention: list[AttentionSpec] | None = None,
        image_size: int | tuple[int, int] = 256,
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
            spectral_norm=spectral_norm,
            init=init,
            init_gain=init_gain,
            attention=attention,
            image_size=image_size,
            zero_bias=False,
        )
