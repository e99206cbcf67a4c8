"""Generators, one family per module; importing this package registers them.

``unet`` / ``unet_128`` / ``unet_256`` (pix2pix U-Net), ``resnet`` / ``resnet_6blocks`` /
``resnet_9blocks`` (pix2pix ResNet), ``pix2pixhd_global`` (pix2pixHD G1), ``mru`` (SketchyGAN).
"""

from ganzoo.generators import mru, pix2pixhd, resnet, unet

__all__ = ["mru", "pix2pixhd", "resnet", "unet"]
