"""Per-run numbers (results.csv) and their per-variant summary (results.md, the terminal table).

One row per (variant, seed): parameters of G and D, ms per iteration (median of the run's
``ms_per_step`` records after the first, which holds the warm-up), the final training losses
(the last logged window) and L1 / PSNR / SSIM on the evaluation split (and LPIPS / DISTS /
FID / KID when the runs were scored with them). The summary is
mean ± sample standard deviation (ddof=1) over seeds; with one seed the spread is written
``–`` (undefined), never 0.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from rich.table import Table

from ganzoo.ablation.spec import EvalSettings
from ganzoo.artifacts.checkpoint import latest_checkpoint
from ganzoo.build import build_discriminator, build_generator
from ganzoo.errors import GanzooError
from ganzoo.evaluation.plots import read_metrics
from ganzoo.recipe import from_dict
from ganzoo.recipe_tree import read_yaml
from ganzoo.records import LOSS_PREFIX, MS_PER_STEP
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import read_json, write_text_atomic

from .claims import read_status
from .plan import run_name
from .runner import MANIFEST, checkpoint_step, eval_record_path, read_eval, score_problem


@dataclass(frozen=True)
class Metric:
    """A summarised column: its CSV key, header, decimals and which direction is better."""

    key: str
    header: str
    decimals: int
    lower_is_better: bool | None  # None: no "best" (e.g. training losses)

    @property
    def arrow(self) -> str:
        return {True: " ↓", False: " ↑", None: ""}[self.lower_is_better]


#: The columns of results.md / metrics.png, in order; losses are added per ablation.
METRICS = (
    Metric("l1", "L1", 4, True),
    Metric("psnr", "PSNR (dB)", 2, False),
    Metric("ssim", "SSIM", 4, False),
    Metric("ms_per_iter", "ms/iter", 1, True),
)
#: Added when the runs were scored with ``--fid``.
FID_METRICS = (Metric("fid", "FID", 2, True), Metric("kid", "KID", 4, True))
#: Added when the runs were scored with LPIPS / DISTS (their weights were cached).
PERCEPTUAL_METRICS = (
    Metric("lpips_alex", "LPIPS-alex", 4, True),
    Metric("lpips_vgg", "LPIPS-vgg", 4, True),
    Metric("dists", "DISTS", 4, True),
)
#: The columns a run has only when it was scored with them.
OPTIONAL_METRICS = (*PERCEPTUAL_METRICS, *FID_METRICS)
#: The metrics the statistics compare (quality, not speed or losses).
QUALITY = ("l1", "psnr", "ssim", *(m.key for m in OPTIONAL_METRICS))
NO_SPREAD = "–"


def read_manifest(out: Path) -> dict[str, Any]:
    """OUT/ablation.json as :meth:`ganzoo.ablation.plan.Plan.manifest` writes it, or a
    one-line error naming what is unreadable or missing in it."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise GanzooError(f"{out}: not an ablation directory (no {MANIFEST}); run `ganzoo ablate`")
    again = "run the ablation again (`ganzoo ablate SPEC --out OUT`) to rewrite it"
    try:
        manifest = read_json(path, "ablation manifest")
    except GanzooError as exc:
        raise GanzooError(f"{exc}; {again}") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise GanzooError(f"{path}: {problem}; {again}")
    return manifest


def _manifest_problem(m: Any) -> str | None:
    """What makes ``m`` unusable as a manifest (None when it is usable)."""
    if not isinstance(m, dict):
        return "not a JSON object"

    def bad(key: str, ok: bool, what: str) -> str | None:
        return None if ok else f"{key} is {'missing' if key not in m else 'not ' + what}"

    def strings(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    checks = (
        ("name", isinstance(m.get("name"), str), "a string"),
        ("base", isinstance(m.get("base"), str), "a string"),
        ("overrides", strings(m.get("overrides")), "a list of strings"),
        ("axes", strings(m.get("axes")), "a list of strings"),
        (
            "seeds",
            isinstance(m.get("seeds"), list) and all(type(x) is int for x in m["seeds"]),
            "a list of integers",
        ),
        (
            "budget",
            isinstance(m.get("budget"), dict) and type(m["budget"].get("max_steps")) is int,
            "{max_steps: N}",
        ),
        ("variants", isinstance(m.get("variants"), list) and bool(m["variants"]), "a list"),
    )
    for key, ok, what in checks:
        if problem := bad(key, ok, what):
            return problem
    try:
        m["eval"] = EvalSettings.model_validate(m.get("eval", None)).model_dump()
    except ValidationError as exc:
        where = ".".join(str(x) for x in exc.errors()[0]["loc"])
        if "eval" not in m:
            return "eval is missing"
        return f"eval{'.' + where if where else ''}: {exc.errors()[0]['msg']}"
    for v in m["variants"]:
        values = v.get("values") if isinstance(v, dict) else None
        if not (
            isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(values, dict)
        ):
            return "a variant is not {name: ..., values: {...}}"
        lacking = [a for a in m["axes"] if not isinstance(values.get(a), str)]
        if lacking:
            return f"variant {v['name']} has no value for axis {lacking[0]}"
    return None


def count_parameters(run_dir: Path) -> tuple[int, int]:
    """(G, D) parameter counts of the run's recipe, built on the meta device."""
    recipe = from_dict(read_yaml(RunDir(run_dir).recipe_path), source=str(run_dir))
    with torch.device("meta"):
        g, d = build_generator(recipe), build_discriminator(recipe)
    return (sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters()))


def ms_per_iter(records: list[dict[str, Any]]) -> float:
    """Median ``ms_per_step`` of the log records after the first (warm-up); the first alone
    when it is the only one."""
    times = [r[MS_PER_STEP] for r in records if MS_PER_STEP in r]
    if not times:
        return math.nan
    return statistics.median(times[1:] if len(times) > 1 else times)


def final_losses(records: list[dict[str, Any]]) -> dict[str, float]:
    """The ``loss_*`` values of the last log record that has any."""
    for record in reversed(records):
        losses = {k: v for k, v in record.items() if k.startswith(LOSS_PREFIX)}
        if losses:
            return losses
    return {}


def collect_rows(out: Path, manifest: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(rows of finished runs, names of the runs that are not finished)."""
    budget = manifest["budget"]["max_steps"]
    split, mode = manifest["eval"]["split"], manifest["eval"]["mode"]
    rows, missing = [], []
    params: dict[str, tuple[int, int]] = {}
    for seed in manifest["seeds"]:
        for variant in manifest["variants"]:
            name = run_name(variant["name"], seed)
            run_dir = Path(out) / "runs" / name
            ckpt = latest_checkpoint(RunDir(run_dir).checkpoints)
            record = read_eval(run_dir, split, budget, mode)
            if ckpt is None or checkpoint_step(ckpt) != budget or record is None:
                missing.append(name)
                continue
            problem = score_problem(record)
            if problem is not None:  # never averaged, never marked best
                warnings.warn(
                    f"{eval_record_path(run_dir, split)}: {problem}; run {name} is left out "
                    "(run the same `ganzoo ablate` command again to score it again)",
                    stacklevel=2,
                )
                missing.append(name)
                continue
            if variant["name"] not in params:
                params[variant["name"]] = count_parameters(run_dir)
            records = read_metrics(run_dir)
            fid = {m.key: record[m.key] for m in OPTIONAL_METRICS if m.key in record}
            rows.append(
                {
                    "variant": variant["name"],
                    **{axis: variant["values"][axis] for axis in manifest["axes"]},
                    "seed": seed,
                    "step": budget,
                    "params_g": params[variant["name"]][0],
                    "params_d": params[variant["name"]][1],
                    "ms_per_iter": ms_per_iter(records),
                    "threads": (read_status(out, name) or {}).get("threads", ""),
                    **final_losses(records),
                    "l1": record["l1"],
                    "psnr": record["psnr"],
                    "ssim": record["ssim"],
                    **fid,
                    "n_images": record["n"],
                }
            )
    return rows, missing


def metric_columns(rows: list[dict[str, Any]]) -> list[Metric]:
    """:data:`METRICS`, and LPIPS / DISTS / FID / KID when any run has them."""
    return [*METRICS, *(m for m in OPTIONAL_METRICS if any(m.key in r for r in rows))]


def loss_keys(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r if k.startswith(LOSS_PREFIX)})


def write_csv(rows: list[dict[str, Any]], manifest: dict[str, Any], path: Path) -> Path:
    """results.csv: one row per run; floats at full precision (repr)."""
    columns = [
        "variant",
        *manifest["axes"],
        "seed",
        "step",
        "params_g",
        "params_d",
        "ms_per_iter",
        "threads",
        *loss_keys(rows),
        "l1",
        "psnr",
        "ssim",
        *(m.key for m in OPTIONAL_METRICS if any(m.key in r for r in rows)),
        "n_images",
    ]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns, restval="")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in row.items()})
    write_text_atomic(path, text.getvalue())
    return path


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std (ddof=1) of the finite values; std None with fewer than two."""
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return math.nan, None
    mean = statistics.fmean(finite)
    return mean, statistics.stdev(finite) if len(finite) > 1 else None


@dataclass(frozen=True)
class VariantSummary:
    name: str
    values: dict[str, str]
    seeds: list[int]
    params_g: int
    params_d: int
    stats: dict[str, tuple[float, float | None]]  # metric key -> (mean, std or None)


def summarize(rows: list[dict[str, Any]], manifest: dict[str, Any]) -> list[VariantSummary]:
    """One summary per variant that has finished runs, in the manifest's order."""
    keys = [m.key for m in metric_columns(rows)] + loss_keys(rows)
    out = []
    for variant in manifest["variants"]:
        mine = [r for r in rows if r["variant"] == variant["name"]]
        if not mine:
            continue
        out.append(
            VariantSummary(
                name=variant["name"],
                values=variant["values"],
                seeds=[r["seed"] for r in mine],
                params_g=mine[0]["params_g"],
                params_d=mine[0]["params_d"],
                stats={k: mean_std([r.get(k, math.nan) for r in mine]) for k in keys},
            )
        )
    return out


def best_variants(summaries: list[VariantSummary], metric: Metric) -> set[str]:
    """Names of the variants with the best mean of ``metric`` (ties: all of them)."""
    if metric.lower_is_better is None:
        return set()
    means = {s.name: s.stats[metric.key][0] for s in summaries}
    finite = [m for m in means.values() if math.isfinite(m)]
    if not finite:
        return set()
    best = min(finite) if metric.lower_is_better else max(finite)
    return {name for name, m in means.items() if m == best}


def format_cell(mean: float, std: float | None, decimals: int) -> str:
    """'0.4123 ± 0.0100'; '0.4123 ± –' with one seed; '–' without a value."""
    if not math.isfinite(mean):
        return NO_SPREAD
    spread = NO_SPREAD if std is None else f"{std:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {spread}"


def _loss_metrics(summaries: list[VariantSummary]) -> list[Metric]:
    keys = sorted({k for s in summaries for k in s.stats if k.startswith(LOSS_PREFIX)})
    return [Metric(k, k, 4, None) for k in keys]


def summary_table(
    summaries: list[VariantSummary], manifest: dict[str, Any]
) -> tuple[list[str], list[list[str]], set[tuple[int, int]]]:
    """(header, rows, best cells as (row, column)) shared by results.md, the terminal table and
    the HTML report."""
    axes = manifest["axes"] if len(manifest["axes"]) > 1 else []
    present = {k for s in summaries for k, v in s.stats.items() if math.isfinite(v[0])}
    metrics = [*METRICS, *(m for m in OPTIONAL_METRICS if m.key in present)]
    metrics += _loss_metrics(summaries)
    header = [
        "variant",
        *axes,
        "seeds",
        "G params",
        "D params",
        *(m.header + m.arrow for m in metrics),
    ]
    best = {m.key: best_variants(summaries, m) for m in metrics}
    first = len(header) - len(metrics)
    rows, bold = [], set()
    for i, s in enumerate(summaries):
        cells = [
            s.name,
            *(s.values[a] for a in axes),
            str(len(s.seeds)),
            f"{s.params_g:,}",
            f"{s.params_d:,}",
        ]
        for j, m in enumerate(metrics):
            cells.append(format_cell(*s.stats[m.key], m.decimals))
            if s.name in best[m.key]:
                bold.add((i, first + j))
        rows.append(cells)
    return header, rows, bold


def _table(
    summaries: list[VariantSummary], manifest: dict[str, Any], bold: tuple[str, str]
) -> tuple[list[str], list[list[str]]]:
    """The summary table with the best cells wrapped in ``bold`` (opening, closing)."""
    header, rows, best = summary_table(summaries, manifest)
    for i, j in best:
        rows[i][j] = f"{bold[0]}{rows[i][j]}{bold[1]}"
    return header, rows


def markdown(summaries: list[VariantSummary], manifest: dict[str, Any], n_images: int) -> str:
    """results.md: a short description of the set-up, then the summary table."""
    ev = manifest["eval"]
    seeds = ", ".join(str(s) for s in manifest["seeds"])
    sets = "".join(f" `--set {o}`" for o in manifest["overrides"])
    header, rows = _table(summaries, manifest, ("**", "**"))
    lines = [
        f"# Ablation: {manifest['name']}",
        "",
        f"Base recipe `{manifest['base']}`{sets}; every variant trained for "
        f"{manifest['budget']['max_steps']} generator steps with seeds {seeds} (the seed sets "
        "the data order, the augmentation and the initialisation, identically for every "
        f"variant), then scored on the whole `{ev['split']}` split ({n_images} images, "
        f"{ev['mode']} mode).",
        "",
        "Cells are mean ± sample standard deviation (ddof=1) over seeds; `± –` means a single "
        "seed (no spread). **Bold** marks the best mean per metric: ↓ lower is better, ↑ higher "
        "is better. ms/iter is the median training step time of each run after its first log "
        "window. Losses are the last logged window of training (no best: a GAN's losses do not "
        "rank generators).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    return "\n".join(lines)


def rich_table(summaries: list[VariantSummary], manifest: dict[str, Any]) -> Table:
    """The summary as a rich table (best in bold green)."""
    header, rows = _table(summaries, manifest, ("[bold green]", "[/bold green]"))
    table = Table(*header, title=f"ablation {manifest['name']}", header_style="bold")
    for r in rows:
        table.add_row(*r)
    return table
