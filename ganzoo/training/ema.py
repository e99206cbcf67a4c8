"""The exponential moving average of G (``optim.ema_decay``), spectral norm included.

``AveragedModel(use_buffers=True)`` averages every buffer, spectral norm's power-iteration
vectors ``_u`` / ``_v`` too: the average of unit vectors is shorter than 1, and eval mode's
``sigma = u^T W v`` then underestimates the largest singular value (the layers come out too
large). :func:`update_ema` re-runs the power iteration on the averaged copy after each update,
so the copy that is evaluated, sampled and saved carries unit vectors of its own weights.
"""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ganzoo.nn.spectral import renormalise_spectral_norm
from ganzoo.training.master_weights import fp32_view


def build_ema(module: nn.Module, decay: float) -> AveragedModel:
    """An averaged copy of ``module`` (parameters and buffers) with weight ``decay`` on the past."""
    return AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def update_ema(ema: AveragedModel, module: nn.Module) -> None:
    """Average ``module`` (its fp32 masters under bf16-master) into ``ema``, then renormalise
    the copy's spectral-norm vectors."""
    ema.update_parameters(fp32_view(module))
    renormalise_spectral_norm(ema.module)
