"""LPIPS (Zhang et al., CVPR 2018) and DISTS (Ding et al., TPAMI 2020) per image, on
generator-range tensors in [-1, 1].

* ``lpips_alex`` / ``lpips_vgg``: LPIPS v0.1 on torchvision's AlexNet / VGG16 features: each
  layer's features unit-normalised over channels, squared differences weighted by the learnt
  1x1 "lin" layers, averaged over space, summed over layers (lower: more alike);
* ``dists``: DISTS on VGG16 with L2 pooling, 1 - the alpha/beta-weighted structure and texture
  similarities of the image and five feature maps (lower: more alike).

The networks are the authors' (``lpips`` 0.1.4, ``DISTS_pytorch`` 0.1) built from torchvision's
architectures; the learnt weights are the authors' files as torchmetrics ships them
(``torchmetrics/functional/image/lpips_models/{alex,vgg}.pth``,
``dists_models/weights.pt``), and the ImageNet backbones are torchvision's files in the torch
hub cache, ``$TORCH_HOME/hub/checkpoints/`` (:func:`backbone_path`), loaded with
``weights_only=True``. ganzoo never downloads them itself: a missing file is a one-line
:class:`WeightsMissingError` naming the file, its URL and where to put it
(docs/faithfulness.md says why torchmetrics' own classes are not used directly).

One-channel images are repeated to RGB; other channel counts are refused in one line.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganzoo.errors import GanzooError, SizeError
from ganzoo.nn.torchvision_weights import hub_cache_path, load_features
from ganzoo.safe_io import load_weights

#: The metrics of this module, by name, with the torchvision backbone each needs.
BACKBONE_OF = {"lpips_alex": "alexnet", "lpips_vgg": "vgg16", "dists": "vgg16"}
PERCEPTUAL_METRICS = tuple(BACKBONE_OF)
#: The smallest image side each metric runs on (AlexNet's strides leave nothing below 31 px;
#: VGG16's four poolings before relu5_3 need 16).
MIN_SIDE = {"lpips_alex": 31, "lpips_vgg": 16, "dists": 1}

#: LPIPS's input scaling (the authors' ``ScalingLayer``): (x - shift) / scale on [-1, 1].
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
#: End (exclusive) of each of LPIPS's five slices of ``features``: relu1 .. relu5.
_LPIPS_SLICES = {"alex": (2, 5, 8, 10, 12), "vgg": (4, 9, 16, 23, 30)}
_LPIPS_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
#: DISTS: VGG16 ``features`` indices of the max-pools it replaces by L2 pooling, and the
#: end of each of its five stages (relu1_2 .. relu5_3).
_DISTS_POOLS = (4, 9, 16, 23)
_DISTS_STAGES = (4, 9, 16, 23, 30)
_DISTS_CHANNELS = (3, 64, 128, 256, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsMissingError(GanzooError):
    """A metric's weights file is not where it is looked for."""


def _weights_enum(arch: str):  # noqa: ANN202 - a torchvision Weights member
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    return {"alexnet": AlexNet_Weights, "vgg16": VGG16_Weights}[arch].IMAGENET1K_V1


def backbone_url(arch: str) -> str:
    """torchvision's URL of the ImageNet weights the authors use (IMAGENET1K_V1)."""
    return _weights_enum(arch).url


def backbone_path(arch: str) -> Path:
    """Where torchvision caches ``arch``'s weights: ``torch.hub.get_dir()/checkpoints/<file>``
    (follows TORCH_HOME)."""
    return hub_cache_path(backbone_url(arch))


def _how(arch: str, path: Path) -> str:
    return f"download {backbone_url(arch)} to {path} (the torch hub cache; TORCH_HOME moves it)"


def backbone_features(arch: str) -> nn.Sequential:
    """torchvision's ``alexnet().features`` or ``vgg16().features`` with the cached ImageNet
    weights, frozen, in eval mode; a one-line error when the file is missing or unusable."""
    import torchvision

    path = backbone_path(arch)
    how = _how(arch, path)
    if not path.is_file():
        raise WeightsMissingError(f"needs {path.name}: {how}")
    with torch.device("meta"):  # no time spent initialising what is loaded next
        features = getattr(torchvision.models, arch)(weights=None).features
    what = f"torchvision {arch} weights file"
    load_features(features, path, arch, what, WeightsMissingError, how, f"replace it: {how}")
    return features.requires_grad_(False).eval()


def _torchmetrics_file(*parts: str) -> Path:
    spec = importlib.util.find_spec("torchmetrics")
    root = Path(spec.origin).parent if spec is not None and spec.origin else Path("torchmetrics")
    return root.joinpath("functional", "image", *parts)


def learnt_weights_path(metric: str) -> Path:
    """The authors' learnt weights as torchmetrics ships them: LPIPS's lin layers, DISTS's
    alpha and beta."""
    if metric == "dists":
        return _torchmetrics_file("dists_models", "weights.pt")
    return _torchmetrics_file("lpips_models", f"{metric.removeprefix('lpips_')}.pth")


def _learnt(metric: str) -> dict[str, Tensor]:
    path = learnt_weights_path(metric)
    if not path.is_file():
        raise WeightsMissingError(
            f"needs its learnt weights {path}, which torchmetrics>=1.7 ships: "
            "pip install -U torchmetrics"
        )
    state = load_weights(path, f"{metric} weights file")
    if not isinstance(state, dict):
        raise WeightsMissingError(f"{path}: not the {metric} weights; reinstall torchmetrics")
    return state


def _rgb(x: Tensor) -> Tensor:
    channels = x.shape[1]
    if channels == 1:
        return x.expand(-1, 3, -1, -1)
    if channels != 3:
        raise SizeError(f"LPIPS and DISTS take 1- or 3-channel images, got {channels} channels")
    return x


class LPIPS(nn.Module):
    """LPIPS v0.1: ``forward(fake, real)``, (N, C, H, W) x2 in [-1, 1] with C 1 or 3 -> (N,)
    distances >= 0 (0 for identical images). ``features``: the backbone's ``features``
    (default :func:`backbone_features`); ``lins``: the five 1x1 weights (default the authors')."""

    def __init__(
        self,
        net: Literal["alex", "vgg"] = "alex",
        features: nn.Sequential | None = None,
        lins: dict[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        if net not in _LPIPS_SLICES:
            raise GanzooError(f"LPIPS net {net!r}: use alex or vgg")
        metric = f"lpips_{net}"
        features = features if features is not None else backbone_features(BACKBONE_OF[metric])
        ends = _LPIPS_SLICES[net]
        self.slices = nn.ModuleList(
            features[a:b] for a, b in zip((0, *ends[:-1]), ends, strict=True)
        )
        self.lins = nn.ParameterList(
            nn.Parameter(torch.zeros(1, c, 1, 1), requires_grad=False) for c in _LPIPS_CHANNELS[net]
        )
        state = lins if lins is not None else _learnt(metric)
        for i, lin in enumerate(self.lins):
            key = f"lin{i}.model.1.weight"
            if key not in state or tuple(state[key].shape) != tuple(lin.shape):
                raise WeightsMissingError(f"{metric}: its lin weights lack {key} of {lin.shape}")
            lin.data.copy_(state[key])
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> LPIPS:
        """A fixed metric: always eval."""
        return super().train(False)

    @staticmethod
    def _unit(x: Tensor) -> Tensor:  # the authors' normalize_tensor (eps 1e-10)
        return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)

    @torch.no_grad()
    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        h0 = (_rgb(fake.float()) - self.shift) / self.scale
        h1 = (_rgb(real.float()) - self.shift) / self.scale
        total = torch.zeros(fake.shape[0], device=fake.device)
        for block, lin in zip(self.slices, self.lins, strict=True):
            h0, h1 = block(h0), block(h1)
            diff = (self._unit(h0) - self._unit(h1)).pow(2)
            total = total + F.conv2d(diff, lin).mean(dim=(1, 2, 3))
        return total


class _L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of a 3x3 Hann-weighted, stride-2 blur of x^2, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        a = torch.hann_window(5, periodic=False, dtype=torch.float64)[1:-1]
        g = a[:, None] * a[None, :]
        g = (g / g.sum()).float()
        self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1), False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv2d(x.pow(2), self.filter, stride=2, padding=1, groups=x.shape[1])
        return (out + 1e-12).sqrt()


class DISTS(nn.Module):
    """DISTS: ``forward(fake, real)``, (N, C, H, W) x2 in [-1, 1] with C 1 or 3 -> (N,)
    distances (about 0 for identical images). ``features``: VGG16's ``features`` (default
    :func:`backbone_features`); ``alpha_beta``: {"alpha", "beta"} (default the authors')."""

    def __init__(
        self, features: nn.Sequential | None = None, alpha_beta: dict[str, Tensor] | None = None
    ) -> None:
        super().__init__()
        features = features if features is not None else backbone_features("vgg16")
        stages, start = [], 0
        for end in _DISTS_STAGES:
            modules = []
            for i in range(start, end):
                if i in _DISTS_POOLS:
                    modules.append(_L2Pool(_DISTS_CHANNELS[_DISTS_POOLS.index(i) + 1]))
                else:
                    modules.append(features[i])
            stages.append(nn.Sequential(*modules))
            start = end
        self.stages = nn.ModuleList(stages)
        state = alpha_beta if alpha_beta is not None else _learnt("dists")
        shape = (1, sum(_DISTS_CHANNELS), 1, 1)
        for key in ("alpha", "beta"):
            if key not in state or tuple(state[key].shape) != shape:
                raise WeightsMissingError(f"dists: its weights lack {key} of shape {shape}")
        self.register_buffer("alpha", state["alpha"].detach().float().clone(), False)
        self.register_buffer("beta", state["beta"].detach().float().clone(), False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), False)
        self.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> DISTS:
        """A fixed metric: always eval."""
        return super().train(False)

    def _features(self, x: Tensor) -> list[Tensor]:
        out, h = [x], (x - self.mean) / self.std
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    @torch.no_grad()
    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        x = (_rgb(fake.float()) + 1) / 2
        y = (_rgb(real.float()) + 1) / 2
        fx, fy = self._features(x), self._features(y)
        total = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / total, _DISTS_CHANNELS, dim=1)
        betas = torch.split(self.beta / total, _DISTS_CHANNELS, dim=1)
        c1 = c2 = 1e-6
        score = torch.zeros(fake.shape[0], 1, 1, 1, device=fake.device)
        for a, b, alpha, beta in zip(fx, fy, alphas, betas, strict=True):
            ma, mb = a.mean((2, 3), keepdim=True), b.mean((2, 3), keepdim=True)
            structure = (2 * ma * mb + c1) / (ma.pow(2) + mb.pow(2) + c1)
            va = (a - ma).pow(2).mean((2, 3), keepdim=True)
            vb = (b - mb).pow(2).mean((2, 3), keepdim=True)
            cov = (a * b).mean((2, 3), keepdim=True) - ma * mb
            texture = (2 * cov + c2) / (va + vb + c2)
            score = score + (alpha * structure).sum(1, keepdim=True)
            score = score + (beta * texture).sum(1, keepdim=True)
        return 1 - score.flatten()


def build_metric(name: str, features: dict[str, nn.Sequential] | None = None) -> nn.Module:
    """The module of one of :data:`PERCEPTUAL_METRICS`; ``features`` caches backbones by
    architecture (VGG16 is loaded once for ``lpips_vgg`` and ``dists``)."""
    if name not in BACKBONE_OF:
        raise GanzooError(f"unknown perceptual metric {name!r}; use {', '.join(BACKBONE_OF)}")
    cache = features if features is not None else {}
    arch = BACKBONE_OF[name]
    if arch not in cache:
        cache[arch] = backbone_features(arch)
    if name == "dists":
        return DISTS(cache[arch])
    return LPIPS("alex" if arch == "alexnet" else "vgg", cache[arch])
