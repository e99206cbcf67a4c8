"""``ganzoo demo SOURCE --export DIR``: the demo as a self-contained folder, and its push to a
Hugging Face Space (``ganzoo push SOURCE NAMESPACE/NAME --space``).

::

    DIR/app.py             the page: ``python app.py`` serves it (127.0.0.1:7860, or
                           GRADIO_SERVER_NAME / GRADIO_SERVER_PORT as a Space sets them)
    DIR/requirements.txt   what a Space (or a fresh virtual environment) installs
    DIR/model.safetensors  the generator with its recipe, as ``ganzoo export --format hub``
    DIR/recipe.yaml, config.json
    DIR/README.md          the Space's front matter (sdk: gradio, app_file: app.py), then the
                           model card
    DIR/examples/*.png     the example inputs the page shows, when the model has some
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ganzoo.artifacts.hub import check_repo_id, save_pretrained, upload_folder
from ganzoo.artifacts.loading import load_generator
from ganzoo.artifacts.sources import output_base
from ganzoo.demo.model import EXAMPLES, DemoModel
from ganzoo.safe_io import write_text_atomic
from ganzoo.version import __version__

APP = '''"""The ganzoo demo of {name}, written by `ganzoo demo --export`.

Run it with `python app.py` and open http://127.0.0.1:7860/ (GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT choose another address, as a Hugging Face Space does).
"""

from pathlib import Path

from ganzoo.demo.page import serve

serve(Path(__file__).resolve().parent, kind={kind!r})
'''


def requirements(gradio_version: str | None) -> str:
    """requirements.txt: ganzoo with its demo extra (and the Gradio this folder was made
    with, as the lower bound)."""
    lines = [f"ganzoo[demo]>={__version__}"]
    if gradio_version:
        lines.append(f"gradio>={gradio_version}")
    return "\n".join(lines) + "\n"


def space_front_matter(name: str, gradio_version: str | None) -> str:
    """The YAML block a Hugging Face Space reads from README.md."""
    lines = ["---", f"title: {name}", "sdk: gradio"]
    if gradio_version:
        lines.append(f"sdk_version: {gradio_version}")
    lines += ["app_file: app.py", "pinned: false", "tags: [ganzoo, pix2pix, image-to-image]"]
    return "\n".join([*lines, "---", ""])


def export_demo(
    source: str | Path, out: str | Path, *, kind: str | None = None, use_ema: bool = True
) -> Path:
    """Write the demo folder of ``source`` (anything ``ganzoo.load`` takes) into ``out`` (a
    new or empty folder; see the module docstring); returns it."""
    from ganzoo.demo.page import require_gradio

    gradio_version = getattr(require_gradio(), "__version__", None)
    model = DemoModel(source, kind=kind, device="cpu")
    examples = model.examples()
    net, recipe, info = load_generator(source, use_ema=use_ema, device="cpu")
    out = save_pretrained(net, recipe, info, out, run_dir=output_base(source, info.path))
    card = (out / "README.md").read_text()
    card = card.split("---\n", 2)[2].lstrip() if card.startswith("---\n") else card
    write_text_atomic(out / "README.md", space_front_matter(recipe.name, gradio_version) + card)
    write_text_atomic(out / "app.py", APP.format(name=recipe.name, kind=model.kind))
    write_text_atomic(out / "requirements.txt", requirements(gradio_version))
    if examples:
        (out / EXAMPLES).mkdir()
        for path in examples:
            shutil.copyfile(path, out / EXAMPLES / path.name)
    return out


def push_space(
    source: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    kind: str | None = None,
    use_ema: bool = True,
    endpoint: str | None = None,
) -> str:
    """Export ``source``'s demo folder and upload it to the Gradio Space ``repo_id`` (created
    if missing); returns the commit URL."""
    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="ganzoo-space-") as tmp:
        folder = export_demo(source, Path(tmp) / "space", kind=kind, use_ema=use_ema)
        return upload_folder(
            folder, repo_id, private=private, endpoint=endpoint, space_sdk="gradio"
        )
