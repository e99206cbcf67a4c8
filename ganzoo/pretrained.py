"""The official pretrained pix2pix generators, one command away.

``fetch_pretrained(NAME, TO)`` downloads the upstream file from the authors' server with
:func:`ganzoo.download.download` (resumable, bounded, renamed only when complete), imports it
with the architecture the authors trained it with (:func:`ganzoo.upstream.import_checkpoint`,
which checks every tensor's name and shape: the integrity check) and leaves a run directory
``TO/NAME`` that ``translate``, ``eval``, ``export`` and ``ganzoo.load`` accept. Offline, the
error says which file to download by hand and the ``ganzoo import weights`` command for it.

Integrity: a catalogue entry's ``sha256`` (or the one passed to :func:`fetch_pretrained`) is
checked before the file is read, and a file holding a NaN or an infinity is refused whatever
its hash. The authors publish no checksums for these files and the catalogue pins none it could
not verify, so without ``sha256`` a warning says that only names, shapes and finiteness were
checked, and the SHA-256 of what was downloaded is reported so that it can be pinned.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ganzoo.artifacts.sources import ganzoo_home
from ganzoo.download import Limits, download
from ganzoo.errors import GanzooError, did_you_mean
from ganzoo.run_dir import RunDir
from ganzoo.upstream import import_checkpoint

#: Where the pix2pix authors host the PyTorch models (``scripts/download_pix2pix_model.sh``).
BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
#: A mirror of BASE_URL to use instead (a folder URL holding NAME.pth files).
MIRROR_ENV = "GANZOO_PRETRAINED_MIRROR"
#: A pix2pix unet_256 generator file is about 218 MB (54.4 M float32 parameters).
MAX_BYTES = 256 * 1024 * 1024
#: The upstream flags every official model was trained with: the pix2pix defaults.
PIX2PIX_FLAGS = "--model pix2pix --netG unet_256 --norm batch --ngf 64"
LICENCE = (
    "BSD (pytorch-CycleGAN-and-pix2pix); cite Isola et al., Image-to-Image Translation with "
    "Conditional Adversarial Networks, CVPR 2017"
)


@dataclass(frozen=True)
class Pretrained:
    """One official model: what it translates, the data it learnt from, and its flags."""

    name: str
    task: str
    dataset: str  # the pix2pix dataset (``ganzoo data fetch DATASET``)
    direction: str  # which half of that dataset's A|B files is the input
    data_source: str
    flags: str = PIX2PIX_FLAGS
    sha256: str | None = None  # of the official file; None: the authors publish none
    size: int | None = None  # bytes of the official file, when known

    @property
    def url(self) -> str:
        return f"{BASE_URL}/{self.name}.pth"

    @property
    def all_flags(self) -> str:
        return f"{self.flags} --direction {self.direction}"


CATALOG: dict[str, Pretrained] = {
    p.name: p
    for p in [
        Pretrained(
            "facades_label2photo",
            "architectural label map -> facade photo",
            "facades",
            "BtoA",
            "CMP Facades (Tylecek & Sara, GCPR 2013)",
        ),
        Pretrained(
            "sat2map",
            "aerial photo -> map",
            "maps",
            "AtoB",
            "Google Maps tiles of New York City (pix2pix paper)",
        ),
        Pretrained(
            "map2sat",
            "map -> aerial photo",
            "maps",
            "BtoA",
            "Google Maps tiles of New York City (pix2pix paper)",
        ),
        Pretrained(
            "edges2shoes",
            "edge map -> shoe photo",
            "edges2shoes",
            "AtoB",
            "UT Zappos50K (Yu & Grauman, CVPR 2014) with HED edges",
        ),
        Pretrained(
            "day2night",
            "daytime photo -> night photo",
            "night2day",
            "BtoA",
            "Transient Attributes (Laffont et al., SIGGRAPH 2014)",
        ),
    ]
}


SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Fetched:
    """What :func:`fetch_pretrained` left: the run directory, and whether it downloaded."""

    model: Pretrained
    run_dir: Path
    downloaded: bool
    sha256: str | None = None  # of the file downloaded (None when nothing was)


def model(name: str) -> Pretrained:
    """The catalogue entry of ``name``; a one-line error suggesting the closest."""
    entry = CATALOG.get(name)
    if entry is None:
        hint = did_you_mean(name, CATALOG)
        hint = f"{hint} " if hint else ""
        raise GanzooError(
            f"unknown pretrained model '{name}'; {hint}known: {', '.join(CATALOG)} "
            "(`ganzoo pretrained list`)"
        )
    return entry


def resolve(source: str | Path) -> str | Path:
    """``source`` itself, unless it names an official model and no such local path exists: then
    that model's run directory, fetched once into ``$GANZOO_HOME/pretrained`` (default
    ``~/.cache/ganzoo/pretrained``). ``ganzoo.load`` and the CLI call this before
    :func:`ganzoo.artifacts.load`, which knows run directories, files and the Hub only."""
    text = str(source)
    if text in CATALOG and not Path(text).exists():
        return fetch_pretrained(text, ganzoo_home() / "pretrained").run_dir
    return source


def by_hand(entry: Pretrained, to: Path) -> str:
    """What to do without a network: the file to download and the import command."""
    return (
        f"download {entry.url} by hand and run `ganzoo import weights {entry.name}.pth --out "
        f"{to / entry.name} --flags '{entry.all_flags}'`"
    )


def fetch_pretrained(
    name: str,
    to: str | Path = Path("runs") / "pretrained",
    *,
    base_url: str | None = None,
    limits: Limits | None = None,
    progress: bool = True,
    overwrite: bool = False,
    sha256: str | None = None,
) -> Fetched:
    """Download and import official model ``name`` into the run directory ``to/name``.

    When ``to/name`` already holds the imported model nothing is downloaded again, unless
    ``overwrite``. ``base_url`` (or ``$GANZOO_PRETRAINED_MIRROR``) replaces the authors'
    server. ``sha256`` (64 hex digits) pins the file's hash when the catalogue has none; a
    file that does not match it, or the catalogue's size, is refused and deleted.
    """
    entry = model(name)
    expected = sha256 or entry.sha256
    if expected is not None and not SHA256.match(expected):
        raise GanzooError(f"--sha256 {expected[:80]!r}: a SHA-256 is 64 hexadecimal digits")
    to = Path(to)
    run = RunDir(to / entry.name)
    if run.is_run() and any(run.checkpoints.glob("step_*.pt")) and not overwrite:
        return Fetched(entry, run.path, downloaded=False)
    base_url = base_url or os.environ.get(MIRROR_ENV)
    url = f"{base_url.rstrip('/')}/{entry.name}.pth" if base_url else entry.url
    console = Console(stderr=True, quiet=not progress, markup=False, soft_wrap=True)
    file = to / f"{entry.name}.pth"
    hint = by_hand(entry, to)
    download(url, file, limits or Limits(MAX_BYTES), hint=hint, console=console, sha256=expected)
    try:
        digest = file_sha256(file)
        if entry.size is not None and file.stat().st_size != entry.size:
            raise GanzooError(f"{file.stat().st_size} bytes, not the official {entry.size}")
        import_checkpoint(
            file,
            run.path,
            flags=entry.all_flags,
            overwrite=overwrite,
            overrides={"data.root": f"datasets/{entry.dataset}", "name": entry.name},
        )
        if expected is None:
            warnings.warn(
                f"{entry.name}.pth: no SHA-256 to check it against (the authors publish none); "
                f"only its tensor names, shapes and finiteness were checked; its SHA-256 is "
                f"{digest}: pin it with --sha256 next time",
                stacklevel=2,
            )
        return Fetched(entry, run.path, downloaded=True, sha256=digest)
    except GanzooError as exc:
        raise GanzooError(
            f"{url} did not hold the expected {entry.name} generator ({exc}); it was deleted, "
            "fetch again or report it"
        ) from None
    finally:
        file.unlink(missing_ok=True)
