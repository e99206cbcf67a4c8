"""Precise BatchNorm: running statistics recomputed as population averages.

During training a BatchNorm layer keeps an exponential moving average (momentum 0.1) of the
statistics of each batch, so its stored mean and variance weigh the last ~20 batches, seen by
older weights. At batch size 1 that is ~20 single images: a noisy estimate that eval mode then
applies to every image. :func:`recompute_bn_statistics` replaces them, as fvcore's and
detectron2's ``update_bn_stats`` do, by the plain average over many batches of the per-batch
mean and (unbiased) variance, computed with the final weights. Everything except the
BatchNorm layers runs in eval mode meanwhile (dropout off, spectral-norm vectors frozen), so the
statistics are those of the activations eval mode will normalise.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(net: nn.Module) -> list[_BatchNorm]:
    """The BatchNorm layers of ``net`` that keep running statistics."""
    return [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_bn_statistics(
    net: nn.Module, batches: Iterable[torch.Tensor], max_images: int
) -> int:
    """Set the running mean and variance of every BatchNorm layer of ``net`` to their average
    over ``batches`` ((N, C, H, W) inputs of ``net``, up to ``max_images`` images); returns the
    number of images used (0: ``net`` has no such layer or no batch came, nothing changed).

    Momenta, ``num_batches_tracked`` and train/eval flags are restored afterwards; on an error
    the previous statistics are put back.
    """
    layers = batchnorm_layers(net)
    if not layers or max_images < 1:
        return 0
    saved = [
        (m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in layers
    ]
    flags = [(m, m.training) for m in net.modules()]
    n = 0
    try:
        net.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: every batch weighs the same
            m.train()
        for x in batches:
            x = x[: max_images - n]
            net(x)
            n += int(x.shape[0])
            if n >= max_images:
                break
    except BaseException:
        n = 0
        raise
    finally:
        for m, (momentum, mean, var, count) in zip(layers, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
            if n == 0:
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
        for m, training in flags:
            m.training = training
    return n
