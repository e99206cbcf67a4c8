"""Discriminators, one family per module; importing this package registers them."""

from ganzoo.discriminators.multidepth import MultiDepthDiscriminator
from ganzoo.discriminators.multiscale import MultiscaleDiscriminator
from ganzoo.discriminators.oasis import OASISDiscriminator
from ganzoo.discriminators.patchgan import PatchGAN, PixelDiscriminator
from ganzoo.discriminators.projected import ProjectedDiscriminator
from ganzoo.discriminators.unet import UNetDiscriminator
from ganzoo.discriminators.vision_aided import VisionAidedDiscriminator

__all__ = [
    "MultiDepthDiscriminator",
    "MultiscaleDiscriminator",
    "OASISDiscriminator",
    "PatchGAN",
    "PixelDiscriminator",
    "ProjectedDiscriminator",
    "VisionAidedDiscriminator",
    "UNetDiscriminator",
]
