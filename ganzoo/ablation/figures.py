"""The two images of an ablation report: metrics.png (bars with error bars) and samples.png
(the same first evaluation inputs translated by every variant)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganzoo.ablation.results import METRICS, VariantSummary, best_variants
from ganzoo.safe_io import write_bytes_atomic


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(summaries: list[VariantSummary], rows: list[dict[str, Any]], path: Path) -> Path:
    """One panel per metric: a bar per variant at its mean, the error bar one sample std
    (none with one seed), each seed's value as a dot; the best bar outlined."""
    plt = _pyplot()
    names = [s.name for s in summaries]
    fig, axes = plt.subplots(
        1,
        len(METRICS),
        figsize=(max(3.2, 0.9 * len(names) + 1.6) * len(METRICS), 3.8),
        squeeze=False,
    )
    for ax, metric in zip(axes.flat, METRICS):
        means = [s.stats[metric.key][0] for s in summaries]
        stds = [s.stats[metric.key][1] for s in summaries]
        best = best_variants(summaries, metric)
        x = list(range(len(names)))
        ax.bar(
            x,
            [m if math.isfinite(m) else 0.0 for m in means],
            yerr=[s if s is not None else 0.0 for s in stds],
            capsize=4,
            color=["#4c72b0" if n in best else "#a6bddb" for n in names],
            edgecolor=["black" if n in best else "none" for n in names],
        )
        for i, name in enumerate(names):
            seed_values = [r[metric.key] for r in rows if r["variant"] == name]
            ax.plot([i] * len(seed_values), seed_values, "k.", markersize=5, zorder=3)
        ax.set_xticks(x)
        ax.set_xticklabels(
            names, rotation=30 if len(names) > 3 else 0, ha="right" if len(names) > 3 else "center"
        )
        ax.set_title(metric.header + metric.arrow)
        ax.grid(axis="y", alpha=0.3)
        finite = [m for m in means if math.isfinite(m)]
        if finite and metric.key in ("psnr", "ssim"):  # zoom in where bars are all tall
            spread = [s or 0.0 for s in stds]
            low = min(m - s for m, s in zip(finite, spread))
            high = max(m + s for m, s in zip(finite, spread))
            pad = max(0.15 * (high - low), 1e-3 * max(abs(high), 1.0))
            ax.set_ylim(max(0.0, low - 4 * pad), high + pad)
    fig.suptitle("mean ± sample std over seeds (dots: seeds)")
    fig.tight_layout()
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """The figure as a PNG written atomically (a link planted at ``path`` is replaced)."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, png.getvalue())
    return path


def _image(x: torch.Tensor) -> Any:
    """(C, H, W) in [-1, 1] -> an (H, W, 3) or (H, W) array in [0, 1] for imshow."""
    x = (x.detach().float().cpu().clamp(-1, 1) + 1) / 2
    if x.shape[0] == 1:
        return x[0].numpy()
    return x[:3].permute(1, 2, 0).numpy()


@torch.no_grad()
def translate_first(
    run_dirs: dict[str, Path], split: str, mode: str, count: int
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(A, B, {variant: G(A)}) for the first ``count`` pairs of ``split``, prepared by the first
    variant's recipe (evaluation geometry); every G runs in ``mode``. Shapes (N, C, H, W)."""
    from ganzoo.artifacts.loading import load_generator
    from ganzoo.data import build_dataset
    from ganzoo.evaluation.inference import translate_batch
    from ganzoo.inference_mode import generator_in_mode, resolve_mode

    inputs = targets = None
    outputs: dict[str, torch.Tensor] = {}
    for name, run_dir in run_dirs.items():
        net, recipe, _ = load_generator(run_dir, device="cpu")
        if inputs is None:
            ds = build_dataset(recipe.data, split, train=False, seed=recipe.seed)
            items = [ds[(0, i)] for i in range(min(count, len(ds)))]
            inputs = torch.stack([it["A"] for it in items])
            targets = torch.stack([it["B"] for it in items])
        with generator_in_mode(net, resolve_mode(net, recipe, mode), recipe.seed) as g:
            fake = translate_batch(g, inputs).float()
        if fake.shape[-2:] != inputs.shape[-2:]:
            fake = F.interpolate(fake, size=inputs.shape[-2:], mode="bilinear")
        outputs[name] = fake
    assert inputs is not None and targets is not None
    return inputs, targets, outputs


def plot_samples(run_dirs: dict[str, Path], split: str, mode: str, count: int, path: Path) -> Path:
    """samples.png: rows = the first ``count`` images of ``split``; columns input | target |
    one per variant (``run_dirs``: variant -> the run of its first seed)."""
    plt = _pyplot()
    inputs, targets, outputs = translate_first(run_dirs, split, mode, count)
    columns = [("input", inputs), ("target", targets), *outputs.items()]
    n = inputs.shape[0]
    h, w = inputs.shape[-2:]
    side = 1.9
    fig, axes = plt.subplots(
        n, len(columns), figsize=(side * len(columns), side * n * h / w + 0.4), squeeze=False
    )
    for c, (title, images) in enumerate(columns):
        for r in range(n):
            ax = axes[r][c]
            image = _image(images[r])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return _save(plt, fig, path)
