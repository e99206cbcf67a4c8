"""``ganzoo eval``: score a trained G on a whole split.

Every pair of the split goes through the deterministic evaluation preprocessing
(``build_dataset(..., train=False)``: no random crop, no flip), G translates A, and the output
is compared with B: L1 on [-1, 1], PSNR and SSIM on [0, 1] (see :mod:`metrics`), LPIPS and
DISTS when their weights are cached (:mod:`perceptual`), averaged over images; optionally FID
and KID (:mod:`fid`). The result goes to ``RUN_DIR/eval/<split>.json``
and the first ``num_samples`` rows (input | output | target) to ``RUN_DIR/eval/<split>.png``,
both written atomically: a link planted at either name is replaced, never written through, and
an ``eval/`` that is a link out of the run directory is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganzoo.artifacts.loading import load_generator
from ganzoo.artifacts.sources import output_base
from ganzoo.data import build_dataset, resolve_root, split_name
from ganzoo.errors import DataError, GanzooError
from ganzoo.evaluation.inference import same_size_batches, translate_batch
from ganzoo.inference_mode import (
    InferenceMode,
    check_mode,
    generator_in_mode,
    resolve_batch_size,
    resolve_mode,
)
from ganzoo.recipe import Recipe, from_dict
from ganzoo.run_dir import RunDir
from ganzoo.run_records import EVAL_NUMBERS
from ganzoo.safe_io import check_inside, write_text_atomic
from ganzoo.samples import save_grid
from ganzoo.scoring.metric_set import DISTANCES, MetricSet, build_metric_set
from ganzoo.scoring.perceptual import PERCEPTUAL_METRICS


def with_data_root(recipe: Recipe, data_root: str | Path | None, source: str | Path) -> Recipe:
    """The recipe with ``data.root`` replaced; a one-line error when the root is missing."""
    if data_root is not None:
        tree = recipe.to_dict()
        tree["data"]["root"] = str(data_root)
        recipe = from_dict(tree, source=f"{source} (recipe, --data {data_root})")
    root = resolve_root(recipe.data.root)
    if not root.is_dir():
        hint = "pass --data ROOT to point at the dataset" if data_root is None else "fix --data"
        raise DataError(f"data root {root} of {source} does not exist here; {hint}")
    return recipe


def _items(ds: Any) -> Iterator[tuple[dict[str, Any], torch.Tensor]]:
    for i in range(len(ds)):
        item = ds[(0, i)]
        yield item, item["A"]


@torch.no_grad()
def score_generator(
    net: nn.Module,
    recipe: Recipe,
    split: str,
    *,
    mode: str | InferenceMode = "auto",
    batch_size: int | None = None,
    num_samples: int = 0,
    metric_set: MetricSet | None = None,
) -> tuple[dict[str, float], int, tuple[torch.Tensor, ...] | None]:
    """({metric: value} of ``metric_set`` (default L1, PSNR, SSIM), image count, first
    ``num_samples`` (A, G(A), B) rows); ``mode`` as :func:`~ganzoo.inference_mode.resolve_mode`
    decides."""
    if isinstance(mode, str):
        mode = resolve_mode(net, recipe, mode)
    try:
        ds = build_dataset(recipe.data, split, train=False, seed=recipe.seed)
    except DataError as exc:  # the data layer's advice is for training recipes
        advice = "set data.train_split / data.val_split to one of them"
        raise DataError(str(exc).replace(advice, "pass --split one of them")) from None
    device = next(net.parameters()).device
    scores = metric_set or build_metric_set(EVAL_NUMBERS)
    scores.reset()
    rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with generator_in_mode(net, mode, recipe.seed) as g:
        for batch in same_size_batches(_items(ds), resolve_batch_size(batch_size, mode.name)):
            a = torch.stack([item["A"] for item, _ in batch]).to(device)
            b = torch.stack([item["B"] for item, _ in batch]).to(device)
            fake = translate_batch(g, a).float()
            scores.update(fake, b)
            same = not rows or rows[0][0].shape == a.shape[1:]
            for k in range(min(num_samples - len(rows), len(batch)) if same else 0):
                rows.append((a[k].cpu(), fake[k].cpu(), b[k].cpu()))
    sheet = tuple(torch.stack(col) for col in zip(*rows)) if rows else None
    return scores.compute(), scores.n, sheet


def evaluate_run(
    run_dir: str | Path,
    split: str = "val",
    *,
    data_root: str | Path | None = None,
    mode: str = "auto",
    num_samples: int = 0,
    fid: bool = False,
    inception_weights: str | Path | None = None,
    feature_extractor: nn.Module | None = None,
    use_ema: bool = True,
    batch_size: int | None = None,
    device: str = "cpu",
    out_dir: str | Path | None = None,
    perceptual: bool = True,
    checkpoint: str = "last",
) -> dict[str, Any]:
    """Score the newest checkpoint of ``run_dir`` (or a checkpoint / safetensors file) on
    ``split``; write ``<out_dir or RUN_DIR/eval>/<split>.json`` (and ``.png`` when
    ``num_samples``) and return the record: l1, psnr, ssim, n, step, checkpoint, mode (as
    asked), mode_used (what ran: eval, train or per-sample), mode_line (why, in one line), ...

    ``perceptual`` adds LPIPS (AlexNet, VGG16) and DISTS when their backbone weights are in
    the torch cache (:mod:`~ganzoo.scoring.perceptual`; else ``notes`` says which file to
    put where, and the other metrics run). ``fid`` adds FID and KID (torchmetrics' Inception,
    or ``feature_extractor``: any module mapping uint8 (N, 3, H, W) to (N, D) features).
    ``checkpoint``: ``last`` or ``best`` of a run directory
    (:func:`~ganzoo.artifacts.sources.find_checkpoint`).
    """
    check_mode(mode)
    if num_samples < 0:
        raise GanzooError(f"--num-samples {num_samples}: must be 0 or more")
    source = str(run_dir)
    net, recipe, info = load_generator(
        source, use_ema=use_ema, device=device, checkpoint=checkpoint, small_convs_as_matmuls=True
    )
    recipe = with_data_root(recipe, data_root, source)
    chosen = resolve_mode(net, recipe, mode)
    extractor = None
    if fid:  # asked for: its weights are downloaded when missing, and a failure is an error
        from ganzoo.scoring.fid import inception_extractor

        extractor = feature_extractor or inception_extractor(inception_weights)
    names = (*EVAL_NUMBERS, *(PERCEPTUAL_METRICS if perceptual else ()))
    names += DISTANCES if fid else ()
    metric_set = build_metric_set(
        names, device=next(net.parameters()).device, feature_extractor=extractor
    )
    t0 = time.perf_counter()
    means, n, sheet = score_generator(
        net,
        recipe,
        split,
        mode=chosen,
        batch_size=batch_size,
        num_samples=num_samples,
        metric_set=metric_set,
    )
    record: dict[str, Any] = {
        "split": split,
        "folder": split_name(recipe.data, split, train=False),
        "data_root": str(recipe.data.root),
        "n": n,
        **means,
    }
    if fid:
        record["fid_features"] = (
            "inception" if feature_extractor is None else (type(feature_extractor).__name__)
        )
    base = Path(out_dir) if out_dir is not None else output_base(source, info.path)
    out = Path(out_dir) if out_dir is not None else RunDir(base).eval_dir
    check_inside(out, base)  # RUN/eval must not be a link out of the run
    out.mkdir(parents=True, exist_ok=True)
    record.update(
        step=info.step,
        checkpoint=str(info.path),
        ema=info.ema,
        mode=mode,
        mode_used=chosen.name,
        mode_line=chosen.describe(),
        recipe=recipe.name,
        seconds=round(time.perf_counter() - t0, 3),
        notes=metric_set.notes,
    )
    if sheet is not None:
        record["sheet"] = str(save_grid(out / f"{split}.png", *sheet, within=base))
    path = out / f"{split}.json"
    write_text_atomic(path, json.dumps(record, indent=2) + "\n", within=base)
    record["json"] = str(path)
    return record
