"""Discriminators, one family per module; importing this package registers them."""

from ganzoo.discriminators.multidepth import MultiDepthDiscriminator
from ganzoo.discriminators.multiscale import MultiscaleDiscriminator
from ganzoo.discriminators.patchgan import PatchGAN, PixelDiscriminator
from ganzoo.discriminators.unet import UNetDiscriminator

__all__ = [
    "MultiDepthDiscriminator",
    "MultiscaleDiscriminator",
    "PatchGAN",
    "PixelDiscriminator",
    "UNetDiscriminator",
]
