"""Normalisation layers by name, as the pix2pix reference builds them."""

from __future__ import annotations

from typing import Literal

from torch import nn

NormName = Literal["batch", "instance", "syncbatch", "none"]


def norm_layer(norm: NormName, channels: int) -> nn.Module:
    """A 2-d norm layer over ``channels``.

    ``instance`` is affine-free without running statistics (the reference's choice);
    ``syncbatch`` builds a BatchNorm2d that the trainer converts to SyncBatchNorm under DDP.
    """
    if norm in ("batch", "syncbatch"):
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm '{norm}'")


def conv_bias(norm: NormName) -> bool:
    """Convs feeding a norm layer carry a bias only when that norm cannot absorb one."""
    return norm in ("instance", "none")
