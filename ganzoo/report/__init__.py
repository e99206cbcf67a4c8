"""``ganzoo report RUN_DIR | ABLATION_DIR``: one self-contained HTML page (images and plots
inlined, no CDN: it opens offline and can be mailed).

* a run: the recipe, loss, validation and diagnostic curves, the sample sheets over the run
  under a slider, the latest ``ganzoo eval`` results with their mode, timing and environment;
* an ablation: the comparison table with significance marks, the metric plots, the
  side-by-side sample sheet, and every variant's curves overlaid.
"""

from __future__ import annotations

from pathlib import Path

from ganzoo.errors import GanzooError
from ganzoo.run_dir import RunDir
from ganzoo.safe_io import write_text_atomic


def write_html_report(source: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run or ablation directory; returns the HTML file
    (default ``SOURCE/report.html``)."""
    source = Path(source)
    if (source / "ablation.json").is_file():
        from ganzoo.report.ablation import ablation_report

        text = ablation_report(source)
    elif RunDir(source).is_run():
        from ganzoo.report.run import run_report

        text = run_report(source)
    else:
        raise GanzooError(
            f"{source}: neither a run directory (recipe.yaml) nor an ablation (ablation.json)"
        )
    path = Path(out) if out is not None else source / "report.html"
    if path.is_dir():
        raise GanzooError(f"--out {path}: is a folder; give the .html file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


__all__ = ["write_html_report"]
