"""Where a trained generator comes from: every source ``translate``, ``eval``, ``export`` and
``ganzoo.load`` accept, resolved to one local file.

* a run directory: its newest ``checkpoints/step_*.pt``;
* a checkpoint ``.pt`` or an exported ``.safetensors`` file;
* a Hub folder (``model.safetensors`` inside, as ``ganzoo export --format hub`` writes);
* ``hf://namespace/name[@revision]``, or a bare ``namespace/name`` that is no local path: the
  Hugging Face Hub repository, downloaded into the library's cache;
* the name of an official pretrained model (``ganzoo pretrained list``), fetched once into
  ``$GANZOO_HOME/pretrained`` (default ``~/.cache/ganzoo/pretrained``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError, TrainingError, first_line
from ganzoo.training.checkpoint import latest_checkpoint

MODEL_FILE = "model.safetensors"
#: ``hf://namespace/name`` with an optional ``@revision``.
HF_URL = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
#: A bare repo id ``namespace/name`` (used only when no such local path exists).
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def ganzoo_home() -> Path:
    """``$GANZOO_HOME``, default ``~/.cache/ganzoo``: where pretrained models are kept."""
    return Path(os.environ.get("GANZOO_HOME", Path.home() / ".cache" / "ganzoo")).expanduser()


def require_hub() -> Any:
    """The ``huggingface_hub`` module, or a one-line error saying how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise GanzooError(
            "the Hugging Face Hub needs the huggingface_hub package: pip install 'ganzoo[hub]'"
        ) from None
    return huggingface_hub


def is_hub_source(text: str) -> bool:
    """``hf://...``, or a bare ``namespace/name`` that is not a local path: neither it nor its
    folder ``namespace`` exists here (``runs/typo`` is a mistyped run directory, not a Hub
    repository)."""
    if HF_URL.match(text):
        return True
    return bool(REPO_ID.match(text)) and not Path(text).exists() and not Path(text).parent.is_dir()


def resolve_hub_source(text: str) -> Path:
    """The local folder of a Hub model (downloaded into the library's cache if needed;
    ``HF_HUB_OFFLINE=1`` uses the cache only)."""
    match = HF_URL.match(text)
    repo, revision = (match["repo"], match["revision"]) if match else (text, None)
    hub = require_hub()
    try:  # HF_ENDPOINT and the token are the library's own settings, read now
        folder = hub.snapshot_download(
            repo_id=repo, revision=revision, endpoint=os.environ.get("HF_ENDPOINT")
        )
    except Exception as exc:
        local = "" if match else " (there is no such local path either)"
        raise GanzooError(
            f"{text}: could not get the model from the Hub ({first_line(exc)}){local}; check the "
            "name, your network (HF_HUB_OFFLINE=1 uses the local cache only) and your token"
        ) from None
    return Path(folder)


def find_checkpoint(source: str | Path) -> Path:
    """The checkpoint or safetensors file a source names (see the module docstring)."""
    text = str(source)
    if is_hub_source(text):
        return _model_file(resolve_hub_source(text), text)
    path = Path(source)
    if not path.exists():
        from ganzoo.pretrained import CATALOG, fetch_pretrained

        if text in CATALOG:
            return find_checkpoint(fetch_pretrained(text, ganzoo_home() / "pretrained").run_dir)
        raise TrainingError(
            f"{path}: no such run directory, checkpoint, Hub model or pretrained model; give "
            "RUN_DIR, a .pt / .safetensors file, hf://NAMESPACE/NAME or a name from "
            "`ganzoo pretrained list`"
        )
    if path.is_file():
        return path
    if (path / MODEL_FILE).is_file() and not (path / "checkpoints").is_dir():
        return path / MODEL_FILE
    ckpt = latest_checkpoint(path / "checkpoints")
    if ckpt is None:
        what = (
            "has no checkpoints yet"
            if (path / "recipe.yaml").is_file()
            else f"is not a run directory (no checkpoints/ folder, no {MODEL_FILE})"
        )
        raise TrainingError(f"{path} {what}; train it first (`ganzoo train`) or give a .pt file")
    return ckpt


def output_base(source: str | Path, checkpoint: Path) -> Path:
    """The folder that receives a source's ``eval/`` and ``export/``: the run directory of a
    checkpoint, the folder of a file, or ``./<name>`` for a Hub repository (its cache is not
    ours to write into)."""
    text = str(source)
    if is_hub_source(text):
        match = HF_URL.match(text)
        return Path((match["repo"] if match else text).split("/")[-1])
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent
    return checkpoint.parent


def _model_file(folder: Path, text: str) -> Path:
    model = folder / MODEL_FILE
    if not model.is_file():
        raise GanzooError(f"{text}: the repository holds no {MODEL_FILE}; it is not a ganzoo model")
    return model
