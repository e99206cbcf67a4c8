"""The report of an ablation directory, rebuilt from its finished runs alone (no training)::

OUT/results.csv    one row per (variant, seed)
OUT/results.md     mean ± std per variant, best in bold
OUT/metrics.png    bars with error bars, one panel per metric
OUT/samples.png    input | target | one column per variant (first seed)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ganzoo.ablation.figures import plot_metrics, plot_samples
from ganzoo.ablation.results import (
    VariantSummary,
    collect_rows,
    markdown,
    read_manifest,
    rich_table,
    summarize,
    write_csv,
)
from ganzoo.errors import GanzooError


@dataclass(frozen=True)
class Report:
    """The files written and the per-variant summary."""

    csv: Path
    markdown: Path
    metrics: Path
    samples: Path
    summaries: list[VariantSummary]
    missing: list[str]  # runs not finished, left out of the report


def write_report(out: str | Path, console: Console | None = None) -> Report:
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
    csv_path = write_csv(rows, manifest, out / "results.csv")
    md_path = out / "results.md"
    md_path.write_text(markdown(summaries, manifest, rows[0]["n_images"]))
    metrics_path = plot_metrics(summaries, rows, out / "metrics.png")
    first_seed = {r["variant"]: r["seed"] for r in reversed(rows)}  # earliest listed seed
    run_dirs = {s.name: out / "runs" / f"{s.name}__seed{first_seed[s.name]}" for s in summaries}
    ev = manifest["eval"]
    samples_path = plot_samples(
        run_dirs, ev["split"], ev["mode"], ev["samples"], out / "samples.png"
    )
    if console is not None:
        console.print(rich_table(summaries, manifest))
        for path in (csv_path, md_path, metrics_path, samples_path):
            console.print(f"wrote {path}", highlight=False)
    return Report(csv_path, md_path, metrics_path, samples_path, summaries, missing)
