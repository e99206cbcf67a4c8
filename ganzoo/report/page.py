"""A self-contained HTML page: inline CSS, images as data URIs, a few lines of script; no CDN,
so the file opens offline and can be mailed."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CSS = """
body { font-family: Georgia, 'Times New Roman', serif; color: #1d1d1f; margin: 0 auto;
       max-width: 1080px; padding: 28px 36px 60px; line-height: 1.45; background: #fff; }
h1 { font-size: 1.9em; margin: 0 0 4px; font-weight: normal; }
h2 { font-size: 1.25em; margin: 34px 0 10px; border-bottom: 1px solid #d0d0d5; padding-bottom: 4px;
     font-weight: normal; }
.subtitle { color: #5f6368; font-size: 0.95em; margin-bottom: 18px; }
table { border-collapse: collapse; margin: 8px 0 4px; font-size: 0.92em;
        font-family: -apple-system, 'Helvetica Neue', Arial, sans-serif; }
th, td { padding: 4px 12px; text-align: right; }
td { white-space: nowrap; }
.wide { overflow-x: auto; }
th:first-child, td:first-child { text-align: left; }
thead tr { border-top: 2px solid #222; border-bottom: 1px solid #222; }
tbody tr:last-child { border-bottom: 2px solid #222; }
td.best { font-weight: bold; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; border: 1px solid #e3e3e6; }
figcaption { font-size: 0.88em; color: #5f6368; margin-top: 4px; }
pre { background: #f6f6f8; padding: 10px 14px; font-size: 0.82em; overflow-x: auto;
      border: 1px solid #e3e3e6; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 6px 20px;
         font-family: -apple-system, 'Helvetica Neue', Arial, sans-serif; font-size: 0.92em; }
.facts div span { color: #5f6368; display: block; font-size: 0.85em; }
.slider { font-family: -apple-system, 'Helvetica Neue', Arial, sans-serif; font-size: 0.9em; }
.slider input { width: 60%; vertical-align: middle; }
.frame { display: none; } .frame.on { display: block; }
.sheet img, .frame img { width: min(100%, 640px); image-rendering: pixelated; }
.mark { color: #1a7f37; font-weight: bold; } .weak { color: #9a6700; }
"""

#: Checks, once loaded, that every image decoded: ``<body data-images="decoded/total">``.
SELF_CHECK = """
window.addEventListener('load', function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-images', ok + '/' + images.length);
});
"""

#: A range input that shows one ``.frame`` of its ``.slider`` block at a time.
SLIDER = """
document.querySelectorAll('.slider').forEach(function (box) {
  var frames = box.querySelectorAll('.frame'), input = box.querySelector('input'),
      label = box.querySelector('.label');
  function show(i) {
    frames.forEach(function (f, j) { f.classList.toggle('on', j === i); });
    label.textContent = frames[i].getAttribute('data-label');
  }
  input.addEventListener('input', function () { show(parseInt(input.value, 10)); });
  show(frames.length - 1);
});
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image(png: bytes | Path, caption: str = "", alt: str = "") -> str:
    """A figure with an inline PNG (bytes, or a PNG file)."""
    data = Path(png).read_bytes() if isinstance(png, Path) else png
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt or caption)}" src="{data_uri(data)}">{cap}</figure>'


def sheet(png: bytes | Path, caption: str) -> str:
    """A sample sheet: shown at least 640 px wide, pixels kept sharp."""
    return image(png, caption).replace("<figure>", '<figure class="sheet">', 1)


def slider(frames: list[tuple[str, bytes]], caption: str) -> str:
    """Sample sheets (PNG bytes) over a run, first to last, one at a time under a slider."""
    if not frames:
        return ""
    imgs = "".join(
        f'<div class="frame" data-label="{esc(label)}">'
        f'<img alt="{esc(label)}" src="{data_uri(png)}"></div>'
        for label, png in frames
    )
    return (
        f'<figure class="slider"><div><input type="range" min="0" max="{len(frames) - 1}" '
        f'value="{len(frames) - 1}"> <span class="label"></span></div>{imgs}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def table(
    header: list[str], rows: list[list[Any]], bold: set[tuple[int, int]] | None = None
) -> str:
    """A booktabs-style table; ``bold`` marks (row, column) cells."""
    bold = bold or set()
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=best' if (i, j) in bold else ''}>{esc(c)}</td>" for j, c in enumerate(row)
        )
        + "</tr>"
        for i, row in enumerate(rows)
    )
    rows_html = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
    return f'<div class="wide"><table>{rows_html}</table></div>'


def facts(items: list[tuple[str, Any]]) -> str:
    return (
        '<div class="facts">'
        + "".join(f"<div><span>{esc(k)}</span>{esc(v)}</div>" for k, v in items)
        + "</div>"
    )


def document(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    body = "".join(f"<h2>{esc(name)}</h2>{content}" for name, content in sections if content)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{esc(title)}</h1><div class="subtitle">{esc(subtitle)}</div>{body}'
        f"<script>{SELF_CHECK}{SLIDER}</script></body></html>"
    )


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def pyplot():  # noqa: ANN201
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "serif",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 9,
        }
    )
    return plt


def panels_png(panels: list[tuple[str, T]], draw: Callable[[Any, T], None]) -> bytes:
    """A grid of up to 3 columns of step-axis panels, ``draw(ax, item)`` filling each
    ``(title, item)``; unused cells blank. PNG bytes."""
    plt = pyplot()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.5 * cols, 2.5 * rows), squeeze=False, layout="constrained"
    )
    for ax, (title, item) in zip(axes.flat, panels):
        draw(ax, item)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.25)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    return figure_png(fig)
