"""Loss and validation curves of a run, from its metrics.jsonl."""

from __future__ import annotations

import io
from pathlib import Path

from ganzoo import records
from ganzoo.errors import GanzooError
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import write_bytes_atomic


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of ``RUN_DIR/metrics.jsonl`` (see :func:`ganzoo.run_records.read_records`:
    unreadable lines are left out with one warning)."""
    run = RunDir(run_dir)
    if not run.metrics_path.is_file():
        raise GanzooError(f"{run_dir}: no metrics.jsonl (is this a run directory?)")
    return run.metrics()


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Write loss curves (one panel per loss) and val L1/PSNR to a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    keys = sorted({k for r in rows for k in r if k.startswith(records.CURVES)})
    if not keys:
        raise GanzooError(f"{run_dir}: metrics.jsonl has no losses yet; train longer first")
    cols = min(3, len(keys))
    grid_rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(grid_rows, cols, figsize=(4.5 * cols, 3.2 * grid_rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        pts = [(r[records.STEP], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="." if len(pts) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.suptitle(Path(run_dir).name)
    fig.tight_layout()
    out = Path(out) if out else Path(run_dir) / "losses.png"
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(out, png.getvalue())  # a link planted at ``out`` is replaced
    return out
