"""The report of an ablation: the comparison table, the metric plots, the side-by-side sample
sheet and every variant's curves overlaid, rebuilt from the finished runs (no training)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ganzoo.ablation.plan import run_name
from ganzoo.ablation.report import Report
from ganzoo.ablation.report import write_results as write_ablation_files
from ganzoo.ablation.results import METRICS, OPTIONAL_METRICS, read_manifest, summary_table
from ganzoo.ablation.statistics import COMPARISON_HEADER, RESAMPLES, comparison_cells
from ganzoo.evaluation.plots import read_metrics
from ganzoo.records import VAL_L1, VAL_PSNR
from ganzoo.report import page
from ganzoo.report.run import series

#: Panels of the overlaid curves: a title and the key drawn, one line per run.
PANELS = (
    ("validation L1", VAL_L1),
    ("validation PSNR (dB)", VAL_PSNR),
    ("discriminator loss", "loss_d"),
    ("generator GAN loss", "loss_g_gan"),
    ("generator L1 loss", "loss_g_l1"),
    ("D accuracy", "d_acc"),
)
COLORS = ("#1f4e79", "#c0504d", "#4f8f3a", "#8064a2", "#d68a00", "#4bacc6", "#7f7f7f")


def overlaid_curves_png(runs: dict[str, list[Path]]) -> bytes | None:
    """One panel per key, one colour per variant, one line per seed; None without data."""
    records = {v: [read_metrics(d) for d in dirs] for v, dirs in runs.items()}
    panels = [
        (title, key)
        for title, key in PANELS
        if any(series(r, key)[0] for seeds in records.values() for r in seeds)
    ]
    if not panels:
        return None

    def draw(ax: Any, key: str) -> None:
        for (variant, seeds), color in zip(records.items(), COLORS * len(records)):
            for i, r in enumerate(seeds):
                steps, values = series(r, key)
                ax.plot(
                    steps,
                    values,
                    color=color,
                    linewidth=1.0,
                    alpha=0.85,
                    marker="." if len(steps) < 30 else None,
                    label=variant if i == 0 else None,
                )
        if key == panels[0][1]:
            ax.legend(fontsize=7, frameon=False)

    return page.panels_png(panels, draw)


def _runs(out: Path, manifest: dict[str, Any], report: Report) -> dict[str, list[Path]]:
    """Finished run directories per variant, in the manifest's order."""
    finished = {(s.name, seed) for s in report.summaries for seed in s.seeds}
    return {
        v["name"]: [
            out / "runs" / run_name(v["name"], seed)
            for seed in manifest["seeds"]
            if (v["name"], seed) in finished
        ]
        for v in manifest["variants"]
        if any((v["name"], seed) in finished for seed in manifest["seeds"])
    }


def _significance(report: Report, decimals: dict[str, int]) -> str:
    """The comparison of every variant with the base: Δ, bootstrap CI, test, p, power."""
    if not report.comparisons:
        return ""
    rows = [comparison_cells(c, decimals.get(c.metric, 4)) for c in report.comparisons]
    marked = {(i, 7) for i, c in enumerate(report.comparisons) if c.significant}
    base = report.comparisons[0].base
    return page.table(COMPARISON_HEADER, rows, marked) + (
        f"<p>Δ is variant − {page.esc(base)} (the first variant), with a bootstrap 95% CI over "
        f"seeds ({RESAMPLES:,} resamples). The test is the paired t-test over the seeds both "
        "share (same seed: same data order and G initialisation), else Welch's t-test; ✓ marks "
        "p &lt; 0.05 with at least 3 seeds. <i>Seeds for 80%</i> is how many seeds would detect "
        "the observed Δ with 80% power (two-sided α = 0.05).</p>"
    )


def ablation_report(out: str | Path) -> str:
    """The HTML of an ablation directory's report (see :func:`ganzoo.report.write_html_report`);
    also (re)writes the ablation's results.csv / results.md / metrics.png / samples.png."""
    out = Path(out)
    manifest = read_manifest(out)
    report = write_ablation_files(out)
    header, rows, best = summary_table(report.summaries, manifest)
    ev = manifest["eval"]
    sets = " ".join(f"--set {o}" for o in manifest["overrides"]) or "none"
    summary = page.facts(
        [
            ("base recipe", manifest["base"]),
            ("overrides", sets),
            ("axes", ", ".join(manifest["axes"])),
            ("variants", len(manifest["variants"])),
            ("seeds", ", ".join(str(s) for s in manifest["seeds"])),
            ("budget", f"{manifest['budget']['max_steps']} generator steps"),
            ("evaluation", f"whole {ev['split']} split, {ev['mode']} mode"),
            ("finished runs", sum(len(s.seeds) for s in report.summaries)),
            ("not finished", ", ".join(report.missing) or "none"),
        ]
    )
    comparison = page.table(header, rows, best) + (
        "<p>Mean ± sample standard deviation (ddof=1) over seeds; <b>bold</b> is the best mean "
        "per metric (↓ lower, ↑ higher is better). Losses are the last logged window and rank "
        "nothing.</p>"
    )
    curves = overlaid_curves_png(_runs(out, manifest, report))
    decimals = {m.key: m.decimals for m in (*METRICS, *OPTIONAL_METRICS)}
    sections = [
        ("Summary", summary),
        ("Comparison", comparison),
        ("Against the base variant", _significance(report, decimals)),
        (
            "Failed runs",
            page.table(["run", "error", "log"], [[f.run, f.error, f.log] for f in report.failed])
            + "<p>Run the same <code>ganzoo ablate</code> command again to retry them.</p>"
            if report.failed
            else "",
        ),
        (
            "Metrics",
            page.image(report.metrics, "Mean and standard deviation over seeds per variant."),
        ),
        (
            "Samples",
            page.sheet(
                report.samples,
                f"First {ev['samples']} {ev['split']} images: input | target | one column per "
                "variant (first seed).",
            ),
        ),
        (
            "Curves",
            page.image(curves, "Every run's curves: one colour per variant, one line per seed.")
            if curves
            else "",
        ),
    ]
    subtitle = f"{out} — report written {time.strftime('%Y-%m-%d %H:%M')} by ganzoo"
    return page.document(f"Ablation {manifest['name']}", subtitle, sections)
