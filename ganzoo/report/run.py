"""The report of one run: what was trained, how the curves went, what it produces, how fast."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

from ganzoo.records import IMAGES_PER_S, LOSS_PREFIX, LR, MS_PER_STEP, STEP, VAL_L1, VAL_PSNR
from ganzoo.report import page
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import UnsafePathError, read_inside

#: The eval record's LPIPS / DISTS columns (present when their weights were cached).
_PERCEPTUAL = ("lpips_alex", "lpips_vgg", "dists")
#: Sample sheets shown under the slider at most (evenly spaced, first and last included).
MAX_FRAMES = 12


def series(records: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(r[STEP], r[key]) for r in records if key in r and math.isfinite(r[key])]
    return [p[0] for p in pts], [p[1] for p in pts]


#: Panels of the curves figure: a title and the keys drawn together in it.
PANELS = (
    ("discriminator loss", ("loss_d", "loss_d_real", "loss_d_fake", "loss_d_penalty")),
    ("generator GAN loss", ("loss_g_gan",)),
    ("reconstruction", ("loss_g_l1", "loss_g_fm", "loss_g_vgg", "loss_g_style")),
    ("validation L1", (VAL_L1,)),
    ("validation PSNR (dB)", (VAL_PSNR,)),
    ("validation SSIM", ("val_ssim",)),
    ("validation LPIPS / DISTS", ("val_lpips_alex", "val_lpips_vgg", "val_dists")),
    ("validation FID", ("val_fid",)),
    ("D accuracy", ("d_acc",)),
    ("D mean output", ("d_out_real", "d_out_fake")),
    ("gradient norm", ("grad_norm_g", "grad_norm_d")),
    ("learning rate", LR),
)
COLORS = ("#1f4e79", "#c0504d", "#4f8f3a", "#8064a2")


def curves_png(records: list[dict[str, Any]], panels: tuple = PANELS) -> bytes | None:
    """One panel per group of keys (lines with a legend), against the step; None when no key
    has data."""
    groups = [(t, [k for k in keys if series(records, k)[0]]) for t, keys in panels]
    groups = [(t, keys) for t, keys in groups if keys]
    if not groups:
        return None

    def draw(ax: Any, keys: list[str]) -> None:
        for key, color in zip(keys, COLORS):
            steps, values = series(records, key)
            marker = "." if len(steps) < 30 else None
            ax.plot(steps, values, color=color, linewidth=1.2, marker=marker, label=key)
        if len(keys) > 1:
            ax.legend(fontsize=7, frameon=False)

    return page.panels_png(groups, draw)


def run_file(run: RunDir, path: Path, *, png: bool = False) -> bytes | None:
    """The bytes of ``path`` when it is a regular file inside the run reached through no link
    (and, with ``png``, a PNG); else None, with a one-line warning saying what was skipped."""
    try:
        return read_inside(path, run.path, png=png)
    except UnsafePathError as exc:
        warnings.warn(f"report: skipped {path}: {exc}", stacklevel=2)
    except OSError as exc:
        warnings.warn(f"report: skipped {path}: {exc.strerror or exc}", stacklevel=2)
    return None


def _frames(run: RunDir) -> list[tuple[str, bytes]]:
    sheets = run.sample_sheets()
    if len(sheets) > MAX_FRAMES:
        idx = sorted({round(i * (len(sheets) - 1) / (MAX_FRAMES - 1)) for i in range(MAX_FRAMES)})
        sheets = [sheets[i] for i in idx]
    frames = [(f"step {step}", run_file(run, p, png=True)) for step, p in sheets]
    return [(label, png) for label, png in frames if png is not None]


def _sheets(run: RunDir, evals: list[dict[str, Any]]) -> str:
    """The eval records' sample sheets: each taken from ``eval/`` by its file name, never from
    the path a record names (a record is a file anyone may have edited)."""
    html = ""
    for e in evals:
        if not e.get("sheet"):
            continue
        png = run_file(run, run.eval_dir / Path(str(e["sheet"])).name, png=True)
        if png is not None:
            mode = e.get("mode_used", e.get("mode", "eval"))
            caption = f"{e['split']} split, {mode} mode: input | output | target"
            html += page.sheet(png, caption)
    return html


def _speeds(records: list[dict[str, Any]], key: str) -> list[float]:
    """The finite, positive values of ``key`` (a time or a rate)."""
    return [r[key] for r in records if key in r and math.isfinite(r[key]) and r[key] > 0]


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds > 100 * 365 * 86400:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def run_report(run_dir: str | Path) -> str:
    """The HTML of a run directory's report (see :func:`ganzoo.report.write_html_report`)."""
    run = RunDir(run_dir)
    recipe = run.read_recipe()
    records = run.metrics()
    losses = [r for r in records if any(k.startswith(LOSS_PREFIX) for k in r)]
    vals = [r for r in records if VAL_L1 in r]
    last = losses[-1] if losses else {}
    previous = 0
    seconds = 0.0
    for r in losses:  # training time from each interval's ms/step
        ms = r.get(MS_PER_STEP, 0.0)
        seconds += ms * max(r[STEP] - previous, 0) / 1000 if math.isfinite(ms) and ms > 0 else 0
        previous = r[STEP]
    speeds = _speeds(losses, MS_PER_STEP)
    rates = _speeds(losses, IMAGES_PER_S)
    median = sorted(speeds)[len(speeds) // 2] if speeds else math.nan
    d = recipe.data
    summary = page.facts(
        [
            ("generator", f"{recipe.generator.name} {_params(recipe.generator.params)}"),
            (
                "discriminator",
                f"{recipe.discriminator.name} {_params(recipe.discriminator.params)}",
            ),
            ("objective", f"{recipe.loss.objective.name}, L1 x {recipe.loss.l1:g}"),
            ("data", f"{d.root} ({d.image_size[0]}x{d.image_size[1]}, batch {d.batch_size})"),
            ("steps / epochs", f"{last.get('step', 0)} / {last.get('epoch', 0)}"),
            ("training time", _duration(seconds) if seconds else "-"),
            ("ms per step (median)", f"{median:.1f}" if speeds else "-"),
            ("images per second", f"{sorted(rates)[len(rates) // 2]:.1f}" if rates else "-"),
            (
                "last val L1 / PSNR",
                f"{vals[-1]['val_l1']:.4f} / {vals[-1].get('val_psnr', math.nan):.2f} dB"
                if vals
                else "-",
            ),
        ]
    )
    png = curves_png(records)
    figures = (
        page.image(
            png,
            "Losses averaged over each logging interval; validation on the first val batches; D's "
            "accuracy and mean outputs, gradient norms and learning rates (the diagnostics of "
            "docs/training.md).",
            alt="curves",
        )
        if png
        else "<p>No records yet.</p>"
    )
    evals = run.eval_records()
    eval_table = (
        page.table(
            ["split", "mode", "images", "step", "L1", "PSNR (dB)", "SSIM"]
            + ["LPIPS-alex", "LPIPS-vgg", "DISTS", "FID"],
            [
                [
                    e["split"],
                    e.get("mode_used", e.get("mode", "eval")),
                    e.get("n", ""),
                    e.get("step", ""),
                    f"{e['l1']:.4f}",
                    f"{e['psnr']:.2f}",
                    f"{e['ssim']:.4f}",
                    *(
                        f"{e[k]:.4f}" if k in e else "-"
                        for k in ("lpips_alex", "lpips_vgg", "dists")
                    ),
                    f"{e['fid']:.2f}" if "fid" in e else "-",
                ]
                for e in evals
            ],
        )
        if evals
        else "<p>No <code>ganzoo eval</code> results yet.</p>"
    )
    sheets = _sheets(run, evals)
    environment = run.environment()
    sections = [
        ("Summary", summary),
        ("Curves", figures),
        (
            "Samples over the run",
            page.slider(
                _frames(run),
                "Rows: input | output | target on the first validation images; drag to see "
                "earlier steps.",
            ),
        ),
        ("Evaluation", eval_table + sheets),
        ("Recipe", f"<pre>{page.esc(recipe.to_yaml())}</pre>"),
        (
            "Environment",
            page.table(["", "value"], [[k, v] for k, v in environment.items()])
            if environment
            else "",
        ),
    ]
    subtitle = f"{run.path} — report written {time.strftime('%Y-%m-%d %H:%M')} by ganzoo"
    return page.document(f"Run {recipe.name}", subtitle, sections)


def _params(params: dict[str, Any]) -> str:
    shown = {
        k: v
        for k, v in params.items()
        if k in ("ngf", "ndf", "norm", "n_layers", "num_d", "branches", "num_downs", "n_blocks")
    }
    return "(" + ", ".join(f"{k} {v}" for k, v in shown.items()) + ")" if shown else ""
