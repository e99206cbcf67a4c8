"""The demo page (Gradio Blocks) and its local server.

Left: an editor whose canvas has the model's training size: black strokes on white for a
sketch model, a brush per class (:func:`ganzoo.demo.inputs.label_palette`) on class 0 for a
label model, a picture (upload, or paint with the example inputs' colours) for an image model;
below it a file upload that takes anything ``ganzoo translate`` reads. Right: the output,
updated after each stroke (Gradio's ``always_last``: strokes drawn while G runs collapse into
one run on the newest canvas), and a one-line status (the time G took, or what is wrong with
the input). Then the size handling, mode and EMA choices of ``translate``, examples and the
model card. Nothing is fetched from the internet: no analytics, no share link, system fonts.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ganzoo.demo.inputs import (
    canvas_array,
    canvas_digest,
    canvas_input,
    file_input,
    hex_colour,
    label_palette,
    preview,
)
from ganzoo.demo.model import DemoModel
from ganzoo.errors import GanzooError, first_line

#: Where the page listens unless told otherwise: this machine only.
HOST = "127.0.0.1"
PORT = 7860
#: Every stroke leaves an input and an output file in Gradio's cache: every 5 minutes, those
#: older than 10 minutes go.
CACHE = (300, 600)
#: The largest upload the server accepts.
MAX_FILE_SIZE = "25mb"
_HINTS = {
    "sketch": "Draw black strokes on the white pad",
    "labels": "Paint classes with the brush colours (one per class)",
    "image": "Upload a picture, or paint on it with the brush",
}
#: A small output shown large, its pixels sharp; the footer's links lead off this machine.
_CSS = (
    "#status p { margin: 0; } footer { display: none !important; } "
    "#output img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"
)


def require_gradio() -> Any:
    """The ``gradio`` module (analytics off), or a one-line error with the pip command."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise GanzooError("the demo needs Gradio: pip install 'ganzoo[demo]'") from None
    return gradio


def _answer(
    model: DemoModel, source: str, value: Any, fit: str, mode: str, ema: bool
) -> tuple[Any, str]:
    """(the output picture, a one-line status) for the canvas (``source`` "canvas") or an
    uploaded file's path; an input the model cannot take gives (None, what is wrong)."""
    try:
        t = model.translator(ema, mode)
        start = time.perf_counter()
        if source == "canvas":
            rgb = canvas_array(value)
            if rgb is None:
                return None, "draw, paint or upload an input"
            out = np.asarray(t(canvas_input(rgb, t, model.kind, fit)))
        else:
            out = preview(t.forward(file_input(value, t, fit)))
        ms = (time.perf_counter() - start) * 1000
    except GanzooError as exc:
        return None, f"**error**: {first_line(exc)}"
    except Exception as exc:  # a bug must not take the page down: one line, the server goes on
        print(f"ganzoo demo: {type(exc).__name__}: {first_line(exc)}", file=sys.stderr)
        return None, f"**error**: {type(exc).__name__}: {first_line(exc)}"
    weights = "EMA" if ema and model.has_ema else "raw"
    h, w = out.shape[:2]
    what = "the canvas" if source == "canvas" else Path(value).name
    how = f"{t.inference.name} mode, {weights} weights"
    return out, f"{h}x{w} output of {what} in {ms:.0f} ms ({how})"


def _blank(model: DemoModel) -> np.ndarray:
    """The empty canvas: white, or class 0's colour for a label painter."""
    h, w = model.size
    colour = label_palette(1)[0] if model.kind == "labels" else np.array([255, 255, 255])
    return np.broadcast_to(colour.astype(np.uint8), (h, w, 3)).copy()


def _brush(gr: Any, model: DemoModel) -> Any:
    h, w = model.size
    size = max(1, min(h, w) // 32)
    if model.kind == "sketch":
        return gr.Brush(colors=["#000000"], color_mode="fixed", default_size=size)
    if model.kind == "labels":
        palette = label_palette(model.recipe.data.labels.num_classes)
        colours = [hex_colour(c) for c in palette]
        return gr.Brush(
            colors=colours,
            default_color=colours[min(1, len(colours) - 1)],
            color_mode="fixed",
            default_size=max(2, size),
        )
    colours = [hex_colour(c) for c in model.example_colours()] or None
    return gr.Brush(colors=colours, color_mode="defaults", default_size=max(2, size))


def build_page(model: DemoModel, *, ema: bool = True) -> Any:
    """The Gradio Blocks of ``model``'s page (not launched); ``ema``: the EMA weights are
    chosen at first (when the run kept them)."""
    gr = require_gradio()
    r = model.recipe
    h, w = model.size
    classes = ""
    if model.kind == "labels":
        n = r.data.labels.num_classes
        classes = f" Brush colour *k* is class *k* (0 .. {n - 1}); the canvas starts as class 0."
    blocks = {"analytics_enabled": False, "delete_cache": CACHE, "title": f"ganzoo demo: {r.name}"}
    with gr.Blocks(**blocks) as page:
        gr.Markdown(
            f"## ganzoo demo: {r.name}\n{_HINTS[model.kind]} ({h}x{w} canvas); the output "
            f"follows each stroke.{classes}"
        )
        with gr.Row():
            with gr.Column():
                editor = gr.ImageEditor(
                    value={"background": _blank(model), "layers": [], "composite": None},
                    image_mode="RGB",
                    type="numpy",
                    format="png",  # lossless: painted class colours arrive exact
                    canvas_size=(w, h),
                    fixed_canvas=True,
                    brush=_brush(gr, model),
                    sources=["upload", "clipboard"],
                    layers=False,
                    transforms=(),
                    height=420,
                    label="input",
                    elem_id="editor",
                )
                upload = gr.File(
                    label="or upload a file (PNG, JPEG, TIFF, .npy; label maps as class ids)",
                    type="filepath",
                    elem_id="upload",
                )
            with gr.Column():
                output = gr.Image(
                    type="numpy",
                    format="png",
                    interactive=False,
                    label="output",
                    height=420,
                    elem_id="output",
                )
                status = gr.Markdown("draw, paint or upload an input", elem_id="status")
                with gr.Row():
                    fit = gr.Radio(["pad", "resize"], value="pad", label="size (as translate)")
                    mode = gr.Radio(["auto", "eval", "train"], value="auto", label="mode")
                    ema = gr.Checkbox(
                        value=model.has_ema and ema,
                        interactive=model.has_ema,
                        label="EMA weights" if model.has_ema else "EMA weights (not kept)",
                    )
        options = [fit, mode, ema]

        last = gr.State(None)  # the digest of this session's canvas answered last

        def on_canvas(value: Any, fit: str, mode: str, ema: bool) -> tuple[Any, str]:
            return _answer(model, "canvas", value, fit, mode, ema)

        def on_edit(
            value: Any, fit: str, mode: str, ema: bool, answered: str | None
        ) -> tuple[Any, str, str | None]:
            """The canvas, unless it is the one answered last: Gradio signals one edit by both
            editor events, and an upload into the file box by an editor event too (an undo
            back to an earlier canvas is a new edit, and answered)."""
            digest = canvas_digest(value)
            if digest is None or digest == answered:
                return gr.skip(), gr.skip(), answered
            return (*on_canvas(value, fit, mode, ema), digest)

        def on_file(path: str | None, fit: str, mode: str, ema: bool) -> tuple[Any, str]:
            if path is None:  # the upload was cleared
                return gr.skip(), gr.skip()
            return _answer(model, "file", path, fit, mode, ema)

        run = {"outputs": [output, status], "show_progress": "hidden"}
        edit = {"outputs": [output, status, last], "show_progress": "hidden"}
        for event in (editor.input, editor.upload):  # a stroke; a picture put in
            event(on_edit, [editor, *options, last], trigger_mode="always_last", **edit)
        upload.change(on_file, [upload, *options], **run)
        for option in options:
            option.change(on_canvas, [editor, *options], **run)
        examples = model.examples()
        if examples:
            shown = gr.Examples([[str(p)] for p in examples], inputs=[editor], label="examples")
            shown.load_input_event.then(on_canvas, [editor, *options], **run)
        with gr.Accordion("model card", open=False):
            gr.Markdown(model.card())
    return page


def launch(page: Any, *, host: str = HOST, port: int = PORT) -> str:
    """Start serving ``page`` on ``host``:``port`` in the background (no share link, system
    fonts, nothing fetched from the internet); returns its URL. :func:`serve_forever` waits."""
    gr = require_gradio()
    theme = gr.themes.Default(
        font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    try:
        page.launch(
            server_name=host,
            server_port=port,
            share=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,
            theme=theme,
            css=_CSS,
            ssr_mode=False,
            pwa=False,
            mcp_server=False,
            max_file_size=MAX_FILE_SIZE,
        )
    except OSError as exc:
        raise GanzooError(
            f"cannot serve on {host}:{port}: {first_line(exc)}; choose another --port"
        ) from None
    return f"http://{host}:{port}/"


def serve(
    source: str | Path,
    *,
    kind: str | None = None,
    host: str | None = None,
    port: int | None = None,
    device: str = "auto",
    ema: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Load ``source``, serve its page until Ctrl-C and say where. ``host`` / ``port``
    default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (a Hugging Face Space sets them), else
    127.0.0.1:7860."""
    host = host or os.environ.get("GRADIO_SERVER_NAME") or HOST
    port = port or int(os.environ.get("GRADIO_SERVER_PORT") or PORT)
    require_gradio()
    model = DemoModel(source, kind=kind, device=device)
    page = build_page(model, ema=ema)
    url = launch(page, host=host, port=port)
    where = (
        "this machine only; --host 0.0.0.0 serves your network"
        if host in ("127.0.0.1", "localhost", "::1")
        else f"every address of {host}: anyone who can reach it may use the model"
    )
    announce(f"ganzoo demo of {model.recipe.name} ({model.kind} input) at {url} ({where})")
    announce("Ctrl-C stops it")
    serve_forever(page)


def serve_forever(page: Any) -> None:
    """Serve a launched page until Ctrl-C, then stop its server."""
    try:
        page.block_thread()
    finally:
        page.close()
