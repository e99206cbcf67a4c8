"""Which torch device a name means: the one resolver behind ``train.device``, ``--device``,
``ganzoo.load(device=...)`` and an ablation worker's device."""

from __future__ import annotations

import torch

from ganzoo.errors import GanzooError


def resolve_device(
    device: str | torch.device = "auto", *, index: int | None = None, setting: str = "device"
) -> torch.device:
    """'auto' -> CUDA when visible, else CPU; 'cuda' (or 'cuda:N') without a visible GPU is a
    one-line error naming ``setting``. ``index``: the GPU that 'auto' and 'cuda' mean (a
    process's local rank); without it, the current one."""
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name.startswith("cuda") and not torch.cuda.is_available():
        raise GanzooError(f"{setting} '{name}' asked for but no CUDA device is visible; use cpu")
    if name == "cuda" and index is not None:
        return torch.device("cuda", index)
    try:
        return torch.device(name)
    except RuntimeError:
        raise GanzooError(f"unknown device '{name}'; use auto, cpu or cuda") from None
