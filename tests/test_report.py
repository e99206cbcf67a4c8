"""``ganzoo report``: self-contained HTML pages, checked in a real headless browser (Debian's
chromium; the browser checks skip where it is absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_recipe
from PIL import Image

from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.report import write_html_report
from ganzoo.training.trainer import train

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--log-level=0",
    "--virtual-time-budget=5000",
]


def browse(page: Path, tmp_path: Path, *extra: str) -> tuple[str, str]:
    """(the DOM after load, the browser's log) of ``page`` opened in headless chromium."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout, done.stderr


def check_in_browser(page: Path, tmp_path: Path) -> None:
    """No console message, every image decoded, a non-blank screenshot."""
    dom, log = browse(page, tmp_path, "--dump-dom")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not console, console[:3]
    decoded = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert decoded, "the page's self-check did not run"
    ok, total = int(decoded[1]), int(decoded[2])
    assert total >= 3 and ok == total
    shot = tmp_path / f"{page.stem}.png"
    browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1200,1600")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.005  # text and figures, not blank


def assert_self_contained(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched from a network
    assert "<script src" not in text and "<link" not in text


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report") / "run"
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=6", "train.log_every=1", "train.sample_every=2"
    )
    train(recipe, run_dir=folder, progress=False)
    assert main(["eval", str(folder), "--num-samples", "2"]) == 0
    return folder


def test_a_run_report_holds_everything_in_one_file(run: Path, tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    assert main(["report", str(run), "--out", str(page)]) == 0
    text = page.read_text()
    assert_self_contained(page)
    for expected in (
        "Run quickstart",
        "Summary",
        "training time",
        "Samples over the run",
        "Evaluation",
        "eval",
        "val",
        "Recipe",
        "name: quickstart",
        "Environment",
        "torch",
        "images per second",
    ):
        assert expected in text, expected
    assert text.count('class="frame"') == 3  # samples at steps 2, 4, 6 under the slider
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 5  # curves, 3 samples, eval


@needs_browser
def test_a_run_report_renders_in_a_browser(run: Path, tmp_path: Path) -> None:
    check_in_browser(write_html_report(run, tmp_path / "run.html"), tmp_path)


def test_report_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="neither a run directory"):
        write_html_report(tmp_path)


@pytest.fixture(scope="module")
def ablation(tiny_data: Path, tmp_path_factory) -> Path:
    """A finished 2-step ablation: two discriminators, two seeds."""
    from test_ablation import DISCRIMINATORS, tiny_sets, write_spec

    folder = tmp_path_factory.mktemp("report-ablation")
    axes = {"discriminator": {k: DISCRIMINATORS[k] for k in ("patchgan", "multiscale")}}
    spec = write_spec(folder, budget={"max_steps": 2}, axes=axes)
    args = ["ablate", str(spec), "--out", str(folder / "out")]
    for s in tiny_sets(tiny_data):
        args += ["--set", s]
    assert main(args) == 0
    return folder / "out"


def test_an_ablation_report_compares_the_variants(ablation: Path, tmp_path: Path) -> None:
    page = tmp_path / "ablation.html"
    assert main(["report", str(ablation), "--out", str(page)]) == 0
    text = page.read_text()
    assert_self_contained(page)
    for expected in (
        "Ablation tiny",
        "Comparison",
        "patchgan",
        "multiscale",
        "L1 ↓",
        "Curves",
        "Against the base variant",
        "paired t",  # both variants share seeds 0 and 1
        "needs more seeds",  # two seeds are never enough for a mark
    ):
        assert expected in text, expected
    assert text.count("<tr>") == 3 + 4  # summary: header + 2 variants; comparisons: header + 3
    assert text.count("class=best") >= 3  # L1, PSNR, SSIM each have a best cell
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 3  # metrics, samples, curves


@needs_browser
def test_an_ablation_report_renders_in_a_browser(ablation: Path, tmp_path: Path) -> None:
    check_in_browser(write_html_report(ablation, tmp_path / "ablation.html"), tmp_path)


@pytest.mark.parametrize(
    "change",
    [lambda r: b'{"l1": "\xff"}', lambda r: {**r, "n": "four"}, lambda r: b"[" * 100_000],
    ids=["not UTF-8", "a string n", "nested 100,000 deep"],
)
def test_an_ablation_report_leaves_out_a_run_with_a_malformed_eval_record(
    ablation: Path, tmp_path: Path, capsys, change
) -> None:
    import json

    out = tmp_path / "out"
    shutil.copytree(ablation, out)
    record_path = next((out / "runs").glob("*/eval/val.json"))
    data = change(json.loads(record_path.read_text()))
    record_path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    assert main(["report", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"1 run(s) not finished, left out of the report: {record_path.parents[1].name}" in err
