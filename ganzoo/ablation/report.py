"""The report of an ablation directory, rebuilt from its finished runs alone (no training)::

OUT/results.csv    one row per (variant, seed)
OUT/results.md     mean ± std per variant, best in bold; each variant against the base
                   (difference, CI, test, power); the runs that failed, with their error
OUT/metrics.png    bars with error bars, one panel per metric
OUT/samples.png    input | target | one column per variant (first seed)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ganzoo.ablation.claims import read_status
from ganzoo.ablation.figures import plot_metrics, plot_samples
from ganzoo.ablation.plan import run_name
from ganzoo.ablation.results import (
    QUALITY,
    VariantSummary,
    collect_rows,
    markdown,
    metric_columns,
    read_manifest,
    rich_table,
    summarize,
    write_csv,
)
from ganzoo.ablation.statistics import Comparison, compare_variants, markdown_section
from ganzoo.errors import GanzooError
from ganzoo.safe_io import write_text_atomic


@dataclass(frozen=True)
class RunFailure:
    """A run whose last attempt failed: its one-line error and the log to read."""

    run: str
    error: str
    log: str | None


def failures(out: Path, manifest: dict[str, Any]) -> list[RunFailure]:
    """The runs of ``out`` whose status records a failure (or a stop), in the manifest's order."""
    found = []
    for seed in manifest["seeds"]:
        for variant in manifest["variants"]:
            name = run_name(variant["name"], seed)
            status = read_status(out, name) or {}
            if status.get("state") in ("failed", "stopped"):
                found.append(RunFailure(name, str(status.get("error", "")), status.get("log")))
    return found


def compare_to_base(out: str | Path, rows: list[dict[str, Any]] | None = None) -> list[Comparison]:
    """Each variant against the base (the first) for every quality metric (L1, PSNR, SSIM and
    FID / KID when scored), from the finished runs of the ablation directory ``out``; what
    the HTML report renders."""
    manifest = read_manifest(Path(out))
    if rows is None:
        rows, _ = collect_rows(Path(out), manifest)
    variants = [v["name"] for v in manifest["variants"]]
    metrics = [m.key for m in metric_columns(rows) if m.key in QUALITY]
    return compare_variants(rows, variants, metrics)


def failures_section(found: list[RunFailure]) -> str:
    """The "Failed runs" section of results.md (empty when none failed)."""
    if not found:
        return ""
    lines = [
        "## Failed runs",
        "",
        "Left out of the tables above; run the same `ganzoo ablate` command again to retry "
        "them (finished runs are kept).",
        "",
        "| run | error | log |",
        "|---|---|---|",
        *(f"| {f.run} | {f.error.replace('|', '/')} | `{f.log}` |" for f in found),
        "",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Report:
    """The files written and the per-variant summary."""

    csv: Path
    markdown: Path
    metrics: Path
    samples: Path
    summaries: list[VariantSummary]
    missing: list[str]  # runs not finished, left out of the report
    comparisons: list[Comparison]  # each variant against the base, per quality metric
    failed: list[RunFailure]


def write_results(out: str | Path, console: Console | None = None) -> Report:
    """Write results.csv, results.md, metrics.png and samples.png into ``out`` from its
    finished runs and print the summary table on ``console`` (when given)."""
    out = Path(out)
    manifest = read_manifest(out)
    rows, missing = collect_rows(out, manifest)
    if not rows:
        raise GanzooError(
            f"{out}: no finished run to report yet; run `ganzoo ablate` to train them"
        )
    if missing:
        warnings.warn(
            f"{len(missing)} run(s) not finished, left out of the report: {', '.join(missing)}",
            stacklevel=2,
        )
    summaries = summarize(rows, manifest)
    comparisons = compare_to_base(out, rows)
    failed = failures(out, manifest)
    csv_path = write_csv(rows, manifest, out / "results.csv")
    md_path = out / "results.md"
    decimals = {m.key: m.decimals for m in metric_columns(rows)}
    write_text_atomic(
        md_path,
        "\n".join(
            part
            for part in (
                markdown(summaries, manifest, rows[0]["n_images"]),
                markdown_section(comparisons, decimals),
                failures_section(failed),
            )
            if part
        ),
    )
    metrics_path = plot_metrics(summaries, rows, out / "metrics.png")
    first_seed = {r["variant"]: r["seed"] for r in reversed(rows)}  # earliest listed seed
    run_dirs = {s.name: out / "runs" / run_name(s.name, first_seed[s.name]) for s in summaries}
    ev = manifest["eval"]
    samples_path = plot_samples(
        run_dirs, ev["split"], ev["mode"], ev["samples"], out / "samples.png"
    )
    if console is not None:
        console.print(rich_table(summaries, manifest))
        for f in failed:
            console.print(f"[red]failed[/red] {f.run}: {f.error} (log {f.log})")
        for path in (csv_path, md_path, metrics_path, samples_path):
            console.print(f"wrote {path}", highlight=False)
    return Report(
        csv_path, md_path, metrics_path, samples_path, summaries, missing, comparisons, failed
    )
