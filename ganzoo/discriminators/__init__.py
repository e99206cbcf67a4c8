"""Discriminators, one family per module; importing this package registers them."""

from ganzoo.discriminators.multidepth import MultiDepthDiscriminator
from ganzoo.discriminators.multiscale import MultiscaleDiscriminator
from ganzoo.discriminators.oasis import OASISDiscriminator
from ganzoo.discriminators.patchgan import PatchGAN, PixelDiscriminator

__all__ = [
    "MultiDepthDiscriminator",
    "MultiscaleDiscriminator",
    "OASISDiscriminator",
    "PatchGAN",
    "PixelDiscriminator",
]
