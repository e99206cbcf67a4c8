"""The metrics one scoring pass computes, for ``ganzoo eval`` and in-training validation.

Per-image metrics (``l1``, ``psnr``, ``ssim`` of :mod:`ganzoo.metrics`; ``lpips_alex``,
``lpips_vgg``, ``dists`` of :mod:`ganzoo.scoring.perceptual`) are averaged over the images
of the pass; ``fid`` and ``kid`` (:mod:`ganzoo.scoring.fid`) are computed over all of them.
A metric whose weights are absent is left out with one note line saying which file to put
where (:attr:`MetricSet.notes`): the other metrics still run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ganzoo import metrics
from ganzoo.errors import GanzooError
from ganzoo.records import metric_names

if TYPE_CHECKING:
    from ganzoo.scoring.fid import InceptionDistances

Scorer = Callable[[Tensor, Tensor], Tensor]  # (N, C, H, W) x2 in [-1, 1] -> (N,)
DISTANCES = ("fid", "kid")


class MetricSet:
    """Accumulates one pass: ``reset()``, ``update(fake, real)`` per batch, ``compute()``.

    ``per_image``: name -> scorer; ``distances``: an :class:`~ganzoo.scoring.fid.
    InceptionDistances` for FID/KID, or None; ``notes``: one line per metric left out."""

    def __init__(
        self,
        per_image: dict[str, Scorer],
        distances: InceptionDistances | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.per_image = dict(per_image)
        self.distances = distances
        self.notes = list(notes or [])
        self.reset()

    @property
    def names(self) -> tuple[str, ...]:
        """The metrics this set computes (``kid`` also gives ``kid_std``)."""
        return (*self.per_image, *(DISTANCES if self.distances is not None else ()))

    def reset(self) -> None:
        self.sums = dict.fromkeys(self.per_image, 0.0)
        self.n = 0
        if self.distances is not None:
            self.distances.reset()

    def _fits(self, name: str, fake: Tensor) -> bool:
        """False, with a note, for a perceptual metric the images do not fit: too small for its
        network, or neither 1 nor 3 channels."""
        from ganzoo.scoring.perceptual import MIN_SIDE

        if name not in MIN_SIDE:
            return True
        h, w = int(fake.shape[-2]), int(fake.shape[-1])
        if fake.shape[1] not in (1, 3):
            why = f"it takes 1- or 3-channel images, these have {fake.shape[1]}"
        elif min(h, w) < MIN_SIDE[name]:
            why = f"images of {h}x{w} are smaller than the {MIN_SIDE[name]} px its network needs"
        else:
            return True
        self.notes.append(f"{name} left out: {why}")
        return False

    @torch.no_grad()
    def update(self, fake: Tensor, real: Tensor) -> None:
        """One batch, (N, C, H, W) x2 in [-1, 1]."""
        fake, real = fake.float(), real.float()
        for name in list(self.per_image):
            if not self._fits(name, fake):
                del self.per_image[name], self.sums[name]
                continue
            values = self.per_image[name](fake, real)
            self.sums[name] += float(values.double().sum())
        self.n += int(fake.shape[0])
        if self.distances is not None:
            self.distances.update(fake, real)

    def compute(self) -> dict[str, float]:
        """{name: mean over the images} and, with distances, fid, kid and kid_std (left out
        with a note when the pass saw fewer than 2 images)."""
        out = {name: total / max(self.n, 1) for name, total in self.sums.items()}
        if self.distances is not None:
            try:
                out.update(self.distances.compute())
            except GanzooError as exc:
                self.notes.append(f"fid, kid left out: {exc}")
        return out


def _per_image(name: str, module: nn.Module, device: torch.device) -> Scorer:
    module = module.to(device)

    def score(fake: Tensor, real: Tensor) -> Tensor:
        return module(fake.to(device), real.to(device)).cpu()

    score.__name__ = name
    return score


def build_metric_set(
    names: Iterable[str],
    *,
    device: str | torch.device = "cpu",
    inception_weights: str | Path | None = None,
    feature_extractor: nn.Module | None = None,
    require: Iterable[str] = (),
) -> MetricSet:
    """A :class:`MetricSet` of ``names``; a metric whose weights are absent is left out with a
    note, except those in ``require``, which raise their one-line error instead. Nothing is
    downloaded: FID's Inception weights come from ``inception_weights`` / the torch cache."""
    from ganzoo.scoring import perceptual

    names = metric_names(tuple(names), "metrics")
    required = set(require)
    device = torch.device(device)
    per_image: dict[str, Scorer] = {}
    notes: list[str] = []
    missing: dict[str, list[str]] = {}  # one note per missing file, naming its metrics
    backbones: dict[str, nn.Sequential] = {}
    for name in names:
        if name in metrics.IMAGE_METRICS:
            per_image[name] = metrics.IMAGE_METRICS[name]
        elif name in perceptual.BACKBONE_OF:
            try:
                per_image[name] = _per_image(name, perceptual.build_metric(name, backbones), device)
            except perceptual.WeightsMissingError as exc:
                if name in required:
                    raise GanzooError(f"{name} {exc}") from None
                missing.setdefault(str(exc), []).append(name)
    distances = None
    if any(name in DISTANCES for name in names):
        from ganzoo.scoring.fid import InceptionDistances, inception_extractor

        try:
            extractor = feature_extractor or inception_extractor(inception_weights, download=False)
            distances = InceptionDistances(extractor, device)
        except GanzooError as exc:
            if required & set(DISTANCES):
                raise
            notes.append(f"fid, kid left out: {exc}")
    notes += [f"{', '.join(which)} left out: {why}" for why, which in missing.items()]
    return MetricSet(per_image, distances, notes)
