"""FID and KID between generated and real images, with torchmetrics.

torchmetrics' default feature extractor is ``NoTrainInceptionV3``, which needs the
``torch-fidelity`` package (``pip install 'ganzoo[fid]'``) and the weights of the TensorFlow
FID Inception network ported by torch-fidelity, the file
``weights-inception-2015-12-05-6726825d.pth`` (about 96 MB). torch-fidelity downloads it from
its GitHub release into the torch hub cache, ``$TORCH_HOME/hub/checkpoints/`` (TORCH_HOME
defaults to ``~/.cache/torch``); ganzoo looks there too, or takes the file from
``--inception-weights`` / ``$GANZOO_INCEPTION_WEIGHTS``. Offline, it says so in one line.

Features are computed once per image and fed to both metrics. Any module mapping uint8
(N, 3, H, W) images to (N, D) features can stand in for Inception (``feature_extractor``).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from ganzoo.download import Limits, download
from ganzoo.errors import GanzooError, first_line
from ganzoo.safe_io import load_weights

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE
)
WEIGHTS_ENV = "GANZOO_INCEPTION_WEIGHTS"
DOWNLOAD_TIMEOUT_S = 60


def cached_weights_path() -> Path:
    """Where torch-fidelity (through torch.hub) keeps the weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _how_to_provide() -> str:
    return (
        f"download {INCEPTION_URL} on a connected machine and put it at {cached_weights_path()} "
        f"(the torch hub cache), or pass --inception-weights FILE (or set {WEIGHTS_ENV})"
    )


def has_torch_fidelity() -> bool:
    return importlib.util.find_spec("torch_fidelity") is not None


def require_torch_fidelity() -> None:
    """A one-line error when torchmetrics' Inception (from torch-fidelity) is not installed."""
    if not has_torch_fidelity():
        raise GanzooError(
            "--fid needs the torch-fidelity package (torchmetrics' Inception network): "
            "pip install 'ganzoo[fid]' (or pip install torch-fidelity)"
        )


#: The weights file is 95.6 MB; a download may not exceed this.
MAX_DOWNLOAD_BYTES = 128 * 1024 * 1024


def _download(url: str, dest: Path) -> None:
    """``url`` to ``dest``, bounded and resumable (:func:`ganzoo.download.download`)."""
    download(url, dest, Limits(MAX_DOWNLOAD_BYTES), hint=_how_to_provide())


def inception_weights(
    explicit: str | Path | None = None, *, download: bool = True, url: str = INCEPTION_URL
) -> Path:
    """The Inception weights file: ``explicit``, else $GANZOO_INCEPTION_WEIGHTS, else the torch
    hub cache, downloading it there when missing (and ``download``); a one-line GanzooError
    saying how to provide it when none of these works."""
    given = explicit or os.environ.get(WEIGHTS_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise GanzooError(f"Inception weights {path}: no such file; {_how_to_provide()}")
        return path
    path = cached_weights_path()
    if path.is_file():
        return path
    if not download:
        raise GanzooError(f"FID/KID need the Inception weights; {_how_to_provide()}")
    try:
        _download(url, path)
    except (OSError, ValueError, GanzooError) as exc:
        raise GanzooError(
            f"FID/KID need the Inception weights {INCEPTION_FILE}, which could not be downloaded "
            f"({first_line(exc)}); {_how_to_provide()}"
        ) from None
    return path


def inception_extractor(weights: str | Path | None = None, *, download: bool = True) -> nn.Module:
    """torchmetrics' FID Inception (2048-d pool features): uint8 (N, 3, H, W) -> (N, 2048)."""
    require_torch_fidelity()
    path = inception_weights(weights, download=download)
    try:  # check the file holds tensors only before torch-fidelity unpickles it
        load_weights(path, "Inception weights file")
    except GanzooError as exc:
        raise GanzooError(f"{exc}; {_how_to_provide()}") from None
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
    )


class _Features(nn.Module):
    """Identity over precomputed features, so one extractor pass feeds FID and KID."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def to_inception_input(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (N, C, H, W), C = 1 or 3 -> uint8 (N, 3, H, W) in [0, 255]."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]


class InceptionDistances:
    """Accumulates features of generated and real batches; ``compute()`` -> FID and KID."""

    def __init__(self, extractor: nn.Module, device: str | torch.device = "cpu") -> None:
        self.extractor = extractor.to(device).eval()
        self.device = torch.device(device)
        self.fake: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []

    def reset(self) -> None:
        """Forget the batches seen (a new pass)."""
        self.fake, self.real = [], []

    @torch.no_grad()
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor(to_inception_input(x).to(self.device)).flatten(1).double().cpu()

    def update(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        """One batch of generated and real images, (N, C, H, W) in [-1, 1]."""
        self.fake.append(self._features(fake))
        self.real.append(self._features(real))

    def compute(self) -> dict[str, float]:
        """{"fid", "kid", "kid_std"}; KID over 100 subsets of min(1000, n) images."""
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        fake, real = torch.cat(self.fake), torch.cat(self.real)
        n = min(len(fake), len(real))
        if n < 2:
            raise GanzooError(f"FID/KID need at least 2 images, the split has {n}")
        dim = int(fake.shape[1])
        fid = FrechetInceptionDistance(feature=_Features(dim)).set_dtype(torch.float64)
        fid.update(real, real=True)
        fid.update(fake, real=False)
        with warnings.catch_warnings():  # "KID will save all extracted features": known
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=_Features(dim), subset_size=min(1000, n))
        kid.update(real, real=True)
        kid.update(fake, real=False)
        kid_mean, kid_std = kid.compute()
        return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
