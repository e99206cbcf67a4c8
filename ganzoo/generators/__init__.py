"""Generators, one family per module; importing this package registers them.

``unet`` / ``unet_128`` / ``unet_256`` (pix2pix U-Net), ``resnet`` / ``resnet_6blocks`` /
``resnet_9blocks`` (pix2pix ResNet), ``pix2pixhd_global`` / ``pix2pixhd_local`` (pix2pixHD G1
and G2), ``mru`` (SketchyGAN), ``lines2face`` (LinesToFacePhoto), ``spade`` (SPADE).
"""

from ganzoo.generators import lines2face, mru, pix2pixhd, resnet, spade, unet

__all__ = ["lines2face", "mru", "pix2pixhd", "resnet", "spade", "unet"]
