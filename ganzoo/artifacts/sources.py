"""Where a trained generator comes from: every source ``translate``, ``eval``, ``export`` and
``ganzoo.load`` accept, resolved to one local file.

* a run directory: its newest ``checkpoints/step_*.pt`` (``checkpoint="last"``), or
  ``checkpoints/best.pt``, the one the ``best_checkpoint`` callback kept (``"best"``);
* a checkpoint ``.pt`` or an exported ``.safetensors`` file;
* a Hub folder (``model.safetensors`` inside, as ``ganzoo export --format hub`` writes);
* ``hf://namespace/name[@revision]``, or a bare ``namespace/name`` that is no local path: the
  Hugging Face Hub repository's ``model.safetensors`` (the only file a model needs), fetched
  through :func:`ganzoo.download.download` within :data:`HUB_LIMITS` into
  ``$GANZOO_HOME/hub/<namespace>--<name>/<commit>/``;
* (the name of an official pretrained model is no source here: ``ganzoo.load`` and the CLI
  turn it into its run directory first, :func:`ganzoo.pretrained.resolve`).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

from ganzoo.artifacts.checkpoint import latest_checkpoint
from ganzoo.artifacts.schema import MODEL_FILE
from ganzoo.download import Limits, download
from ganzoo.errors import GanzooError, TrainingError, first_line
from ganzoo.run_dir import CHECKPOINTS, RunDir
from ganzoo.safe_io import write_text_atomic

#: ``hf://namespace/name`` with an optional ``@revision``.
HF_URL = re.compile(r"^hf://(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
#: A bare repo id ``namespace/name`` (used only when no such local path exists).
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
#: What fetching a Hub model may take: 8 GiB (pix2pixHD's largest generator is under 1 GiB),
#: and the download's time bounds (at least 32 KiB/s on average; see ganzoo.download).
HUB_LIMITS = Limits(max_bytes=8 * 2**30)
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


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
    """The local folder holding a Hub model's ``model.safetensors`` (only that file is fetched,
    within :data:`HUB_LIMITS`; ``HF_HUB_OFFLINE=1`` uses what was fetched before)."""
    match = HF_URL.match(text)
    repo, revision = (match["repo"], match["revision"]) if match else (text, None)
    hub = require_hub()
    from huggingface_hub import constants

    cache = ganzoo_home() / "hub" / repo.replace("/", "--")
    ref = cache / "refs" / ("r-" + urllib.parse.quote(revision or "main", safe=""))
    if constants.HF_HUB_OFFLINE:
        return _cached_hub_model(hub, text, repo, revision, cache, ref)
    endpoint = os.environ.get("HF_ENDPOINT")
    url = hub.hf_hub_url(repo, MODEL_FILE, revision=revision, endpoint=endpoint)
    try:  # HF_ENDPOINT and the token are the library's own settings, read now
        meta = hub.get_hf_file_metadata(url, timeout=HUB_LIMITS.timeout, endpoint=endpoint)
    except Exception as exc:
        if type(exc).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
            raise GanzooError(
                f"{text}: the repository holds no {MODEL_FILE}; it is not a ganzoo model"
            ) from None
        local = "" if match else " (there is no such local path either)"
        raise GanzooError(
            f"{text}: could not get the model from the Hub ({first_line(exc)}){local}; check the "
            "name, your network (HF_HUB_OFFLINE=1 uses the local cache only) and your token"
        ) from None
    commit = str(meta.commit_hash or "")
    if not _COMMIT.match(commit):
        raise GanzooError(f"{text}: the Hub answered without a commit id; try again later")
    folder = cache / commit
    model = folder / MODEL_FILE
    if not model.is_file():
        size = meta.size if isinstance(meta.size, int) and meta.size >= 0 else None
        if size is not None and size > HUB_LIMITS.max_bytes:
            raise GanzooError(
                f"{text}: its {MODEL_FILE} is {size:,} bytes, more than the "
                f"{HUB_LIMITS.max_bytes:,} a ganzoo model can be; nothing was downloaded"
            )
        location = str(meta.location or url)
        same_host = urllib.parse.urlsplit(location).netloc == urllib.parse.urlsplit(url).netloc
        token = hub.utils.build_hf_headers().get("authorization") if same_host else None
        etag = str(meta.etag or "").strip('"').lower()
        download(
            location,
            model,
            replace(HUB_LIMITS, max_bytes=size) if size is not None else HUB_LIMITS,
            hint=f"try again later, or download {MODEL_FILE} of {repo} yourself and give its path",
            headers={"Authorization": token} if token else None,
            sha256=etag if re.fullmatch(r"[0-9a-f]{64}", etag) else None,  # LFS: the SHA-256
        )
    ref.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(ref, commit)
    return folder


def _cached_hub_model(
    hub: Any, text: str, repo: str, revision: str | None, cache: Path, ref: Path
) -> Path:
    """Offline: the folder fetched before for this revision (or a commit id given as the
    revision), else the library's own cache (models fetched by older versions)."""
    commit = revision if revision and _COMMIT.match(revision) else None
    if commit is None and ref.is_file():
        commit = ref.read_text(encoding="utf-8", errors="replace").strip()
    if commit and _COMMIT.match(commit) and (cache / commit / MODEL_FILE).is_file():
        return cache / commit
    try:
        return Path(
            hub.hf_hub_download(repo, MODEL_FILE, revision=revision, local_files_only=True)
        ).parent
    except Exception:
        raise GanzooError(
            f"{text}: not fetched before and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to "
            "download it"
        ) from None


#: What ``checkpoint=`` (``--checkpoint``) picks in a run directory.
CHOICES = ("last", "best")


def find_checkpoint(source: str | Path, checkpoint: str = "last") -> Path:
    """The checkpoint or safetensors file a source names (see the module docstring);
    ``checkpoint``: ``last`` or ``best`` (a run directory's ``checkpoints/best.pt``)."""
    if checkpoint not in CHOICES:
        raise GanzooError(f"--checkpoint {checkpoint!r}: use last or best")
    if checkpoint == "best":
        return _best_checkpoint(source)
    text = str(source)
    if is_hub_source(text):
        return _model_file(resolve_hub_source(text), text)
    path = Path(source)
    if not path.exists():
        raise TrainingError(
            f"{path}: no such run directory, checkpoint, Hub model or pretrained model; give "
            "RUN_DIR, a .pt / .safetensors file, hf://NAMESPACE/NAME or a name from "
            "`ganzoo pretrained list`"
        )
    if path.is_file():
        return path
    run = RunDir(path)
    if (path / MODEL_FILE).is_file() and not run.checkpoints.is_dir():
        return path / MODEL_FILE
    ckpt = latest_checkpoint(run.checkpoints)
    if ckpt is None:
        what = (
            "has no checkpoints yet"
            if run.is_run()
            else f"is not a run directory (no checkpoints/ folder, no {MODEL_FILE})"
        )
        raise TrainingError(f"{path} {what}; train it first (`ganzoo train`) or give a .pt file")
    return ckpt


def _best_checkpoint(source: str | Path) -> Path:
    run = RunDir(source)
    if not run.path.is_dir() or not run.checkpoints.is_dir():
        raise TrainingError(
            f"{source}: --checkpoint best picks from a run directory's checkpoints/, and this is "
            "none; give the run directory, or a file without --checkpoint best"
        )
    if not run.best_checkpoint.is_file():
        raise TrainingError(
            f"{source} kept no best checkpoint ({run.best_checkpoint} is absent); train with "
            "the best_checkpoint callback in train.callbacks, or use --checkpoint last"
        )
    return run.best_checkpoint


def output_base(source: str | Path, checkpoint: Path) -> Path:
    """The folder that receives a source's ``eval/`` and ``export/``: the run directory of a
    checkpoint, the folder of a file, or ``./<name>`` for a Hub repository (its cache is not
    ours to write into)."""
    text = str(source)
    if is_hub_source(text):
        match = HF_URL.match(text)
        return Path((match["repo"] if match else text).split("/")[-1])
    checkpoint = Path(checkpoint)
    if checkpoint.parent.name == CHECKPOINTS:
        return checkpoint.parent.parent
    return checkpoint.parent


def _model_file(folder: Path, text: str) -> Path:
    model = folder / MODEL_FILE
    if not model.is_file():
        raise GanzooError(f"{text}: the repository holds no {MODEL_FILE}; it is not a ganzoo model")
    return model
