"""VGG19 perceptual loss (pix2pixHD's VGGLoss), with ImageNet weights from the torch cache only.

pix2pixHD (and SPADE) feed VGG19 the generator's raw [-1, 1] images, with no ImageNet mean/std
normalisation (``models/networks.py`` ``VGGLoss``): that is the default, ``input="raw"``, so a
recipe's ``loss.perceptual: 10`` means what pix2pixHD's ``lambda_feat`` 10 means.
``input="imagenet"`` maps [-1, 1] to [0, 1] and normalises as torchvision's ImageNet weights
expect; the loss then has another scale.

ganzoo never downloads: the weights must already be where torchvision caches them,
``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`` (see :func:`vgg19_weights_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.errors import SizeError, TrainingError
from ganzoo.nn.torchvision_weights import hub_cache_path, load_features

#: What VGG19 is fed: pix2pixHD's raw [-1, 1] images, or ImageNet-normalised ones.
PerceptualInput = Literal["raw", "imagenet"]

#: End (exclusive) of each slice of torchvision's ``vgg19().features``: relu1_1 ... relu5_1.
SLICE_ENDS = (2, 7, 12, 21, 30)
#: pix2pixHD's weight of each slice's feature L1.
SLICE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
#: torchvision's VGG19 configuration up to conv5_1: exactly ``features[:30]``.
_CFG_TO_CONV5_1: list[int | str] = [64, 64, "M", 128, 128, "M"] + [256] * 4 + ["M"]
_CFG_TO_CONV5_1 += [512] * 4 + ["M", 512]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _weights_url() -> str:
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def vgg19_weights_path() -> Path:
    """Where torchvision caches VGG19_Weights.IMAGENET1K_V1 (follows TORCH_HOME)."""
    return hub_cache_path(_weights_url())


def load_vgg19_features(path: Path) -> nn.Sequential:
    """torchvision's ``vgg19().features[:30]`` (conv1_1 ... relu5_1) with the weights at ``path``.

    ``path`` holds a torchvision VGG19 state dict; its classifier entries are ignored.
    Raises a one-line :class:`TrainingError` when the file is missing or not such a state dict.
    """
    url = _weights_url()
    if not path.is_file():
        raise TrainingError(
            f"the perceptual loss needs torchvision's VGG19 ImageNet weights at {path} "
            f"(file name {path.name}); ganzoo never downloads: fetch {url} to that path "
            "(TORCH_HOME moves it), or set loss.perceptual: 0"
        )
    from torchvision.models.vgg import make_layers

    features = make_layers(_CFG_TO_CONV5_1)
    fix = f"replace it with {url}"
    return load_features(features, path, "VGG19", "VGG19 weights file", TrainingError, fix)


class PerceptualLoss(nn.Module):
    """pix2pixHD VGG loss: feature L1s at relu1_1..relu5_1 weighted 1/32, 1/16, 1/8, 1/4, 1.

    ``forward(fake, real)`` takes images ``(N, C, H, W)`` in [-1, 1] with C = 1 (repeated to
    RGB) or 3, feeds them as ``input`` says (see the module docstring) and returns a float32
    scalar >= 0 (0 for identical images). Gradients flow to ``fake`` only; the VGG is frozen and
    stays in eval.
    """

    def __init__(self, input: PerceptualInput = "raw") -> None:  # noqa: A002 - the option name
        super().__init__()
        if input not in ("raw", "imagenet"):
            raise TrainingError(f"loss.perceptual_input must be raw or imagenet, got {input!r}")
        self.input = input
        features = load_vgg19_features(vgg19_weights_path())
        starts = (0, *SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, SLICE_ENDS))
        self.weights = SLICE_WEIGHTS
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> PerceptualLoss:
        """The VGG is a fixed feature extractor: always eval, whatever ``mode``."""
        return super().train(False)

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        fake_feats = self._features(fake)
        with torch.no_grad():
            real_feats = self._features(real)
        terms = [
            w * F.l1_loss(f.float(), r.float())
            for w, f, r in zip(self.weights, fake_feats, real_feats)
        ]
        return torch.stack(terms).sum()

    def _features(self, images: Tensor) -> list[Tensor]:
        channels = images.shape[1]
        if channels not in (1, 3):
            raise SizeError(
                f"the perceptual loss takes 1- or 3-channel images, got {channels} channels; "
                "set loss.perceptual: 0 for this data"
            )
        if channels == 1:
            images = images.expand(-1, 3, -1, -1)
        h = ((images + 1) / 2 - self.mean) / self.std if self.input == "imagenet" else images
        out = []
        for block in self.slices:
            h = block(h)
            out.append(h)
        return out
