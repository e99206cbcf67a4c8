"""``ganzoo demo``: a local web page (Gradio) where a person draws a sketch, paints a label map
or uploads an image and sees the model's output beside it.

::

    model.py    DemoModel: the loaded generator, the input kind, examples, the model card
    inputs.py   what the page sends (the editor's canvas, an uploaded file) -> the model's input
    page.py     the Gradio page and the local server (127.0.0.1 unless told otherwise)
    export.py   a self-contained folder (app.py, requirements.txt, the model) and the Space push

Gradio is the optional extra ``ganzoo[demo]``; without it each entry point says so in one line.
"""

from __future__ import annotations

from ganzoo.demo.model import DemoModel, input_kind, newest_quickstart

__all__ = ["DemoModel", "input_kind", "newest_quickstart"]
