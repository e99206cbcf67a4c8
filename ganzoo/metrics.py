"""Image-translation metrics per image, on generator-range tensors in [-1, 1].

* ``l1``: mean absolute error on the [-1, 1] scale (the scale of the training L1 loss);
* ``psnr``: 10 log10(1 / MSE) in dB with both images mapped to [0, 1];
* ``ssim``: structural similarity (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5,
  k1 0.01, k2 0.03) with both images mapped to [0, 1] (data range 1), averaged over channels.

Every function maps two (N, C, H, W) batches to (N,) values, so a split's score is the mean
over its images whatever the batch size
(:class:`ganzoo.scoring.metric_set.MetricSet`, the scoring of ``ganzoo eval`` and
in-training validation). [-1, 1] is the target's ``data.range.B`` (or its
dtype's range, see :mod:`ganzoo.data.ranges`), so PSNR and SSIM are relative to ``hi - lo``
of each channel, whatever the files' depth.
"""

from __future__ import annotations

import torch

#: SSIM's window side (Wang et al. 2004); smaller images use the largest odd side that fits.
SSIM_WINDOW = 11


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], float32."""
    return (x.float() + 1) / 2


def l1(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, on the [-1, 1] scale: (N, C, H, W) x2 -> (N,)."""
    return (fake.float() - real.float()).abs().flatten(1).mean(1)


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image with images mapped to [0, 1]: (N, C, H, W) x2 -> (N,)."""
    mse = ((fake.float() - real.float()) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """SSIM per image with images mapped to [0, 1], data range 1: (N, C, H, W) x2 -> (N,)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    side = min(int(fake.shape[-2]), int(fake.shape[-1]))
    window = min(SSIM_WINDOW, side if side % 2 else side - 1)
    return structural_similarity_index_measure(
        to_unit_range(fake),
        to_unit_range(real),
        data_range=1.0,
        kernel_size=window,
        reduction="none",
    )


#: The pixel metrics by name (:mod:`ganzoo.scoring.metric_set` adds LPIPS, DISTS, FID and KID).
IMAGE_METRICS = {"l1": l1, "psnr": psnr, "ssim": ssim}
