"""torchvision ImageNet weights from the torch hub cache, for the frozen feature networks of the
perceptual loss (VGG19) and the perceptual metrics (AlexNet, VGG16). ganzoo never downloads
them: the caller says, in one line, which file to put where."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import torch
from torch import nn

from ganzoo.errors import GanzooError, first_line
from ganzoo.safe_io import load_weights


def hub_cache_path(url: str) -> Path:
    """Where torch.hub (and so torchvision) caches the file of ``url``:
    ``torch.hub.get_dir()/checkpoints/<file name>`` (follows TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / PurePosixPath(urlparse(url).path).name


def load_features(
    features: nn.Module,
    path: Path,
    name: str,
    what: str,
    error: type[GanzooError],
    fix: str,
    unreadable_fix: str | None = None,
) -> nn.Module:
    """``features`` (torchvision's ``<arch>().features``, real or on the meta device) with the
    ``features.*`` entries of the torchvision state dict at ``path`` (an existing file) loaded
    into it, the rest ignored; ``what`` names the file in a load error. A file that is no safe
    state dict (``unreadable_fix``, default
    ``fix``) or not torchvision's ``name`` weights raises ``error`` in one line ending with
    ``fix``."""
    try:
        state = load_weights(path, what)
    except GanzooError as exc:
        raise error(f"{exc}; {unreadable_fix or fix}") from None
    prefix = "features."
    wanted = {prefix + key for key in features.state_dict()}
    if not isinstance(state, dict) or not wanted <= state.keys():
        raise error(f"{path}: not torchvision's {name} weights; {fix}")
    on_meta = any(p.is_meta for p in features.parameters())
    try:
        features.load_state_dict({key[len(prefix) :]: state[key] for key in wanted}, assign=on_meta)
    except RuntimeError as exc:  # shapes that are not the architecture's
        raise error(
            f"{path}: not torchvision's {name} weights ({first_line(exc, with_type=True)}); {fix}"
        ) from None
    return features
