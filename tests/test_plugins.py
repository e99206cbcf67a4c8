"""Third-party plugins: the example package installs, shows up and validates in recipes;
a broken plugin leaves `ganzoo list` working with a warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "ganzoo-example-plugin"


def ganzoo(*args: str, site: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    # this checkout's ganzoo even where cwd is elsewhere (not whichever one the venv installed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "ganzoo", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory) -> Path:
    """Build the example plugin's wheel and install it into a private target folder."""
    tmp = tmp_path_factory.mktemp("plugin")
    wheels, site = tmp / "wheels", tmp / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(PLUGIN)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("ganzoo_example_plugin-*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True,
        timeout=300,
    )
    return site


@pytest.mark.slow
def test_example_plugin_is_listed_with_its_distribution(installed_plugin: Path) -> None:
    result = ganzoo("list", site=installed_plugin)
    assert result.returncode == 0, result.stderr
    lines = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.count("│") >= 4
    }
    for name in ("example_resnet_small", "example_dilated", "example_csv"):
        assert "ganzoo-example-plugin 0.1.0" in lines[name]
    assert "Small residual generator" in lines["example_resnet_small"]
    loggers = ganzoo("list", "logger", site=installed_plugin)
    assert "example_csv" in loggers.stdout and "tensorboard" in loggers.stdout
    launchers = ganzoo("list", "launcher", site=installed_plugin)
    for name in ("example_last_first", "sequential", "local", "submitit"):
        assert name in launchers.stdout


@pytest.mark.slow
def test_an_ablation_runs_through_the_plugin_launcher(
    installed_plugin: Path, tiny_data: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(f"""\
        base: {ROOT / "recipes" / "quickstart.yaml"}
        budget: {{max_steps: 1}}
        axes:
          discriminator:
            patchgan: {{name: patchgan, n_layers: 2, ndf: 4}}
            pixel: {{name: pixel, ndf: 4}}
        launcher: {{name: example_last_first}}
        """)
    )
    sets = [f"data.root={tiny_data}", "data.crop_size=32", "data.load_size=36"]
    sets += ["data.num_workers=0", "data.batch_size=2", "train.precision=fp32"]
    sets += ["generator={name: unet, num_downs: 5, ngf: 4}"]
    out = tmp_path / "out"
    args = ["ablate", str(spec), "--out", str(out), *(x for s in sets for x in ("--set", s))]
    result = ganzoo(*args, "--launcher-opt", "threads=1", site=installed_plugin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    order = [line.split()[1] for line in lines if line.startswith("example_last_first:")]
    assert order == ["pixel__seed0", "patchgan__seed0"]
    assert (out / "results.md").is_file()
    status = json.loads((out / "runs" / "pixel__seed0.status.json").read_text())
    assert status["state"] == "done" and status["threads"] == 1


@pytest.mark.slow
def test_recipe_naming_plugin_components_validates_and_trains(
    installed_plugin: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "plugin.yaml"
    recipe.write_text(
        textwrap.dedent(f"""\
        extends: {ROOT / "recipes" / "quickstart.yaml"}
        name: with_plugin
        generator: {{name: example_resnet_small, ngf: 8, n_blocks: 1}}
        discriminator: {{name: example_dilated, ndf: 8}}
        data: {{crop_size: 32, load_size: 36, num_workers: 0, batch_size: 2}}
        train: {{max_steps: 2, sample_every: 2, log_every: 1, loggers: [example_csv]}}
        """)
    )
    result = ganzoo("check", str(recipe), site=installed_plugin)
    assert result.returncode == 0, result.stderr
    assert "example_resnet_small" in result.stdout
    bad = ganzoo("check", str(recipe), "--set", "generator.n_block=2", site=installed_plugin)
    assert bad.returncode == 2 and "did you mean 'n_blocks'" in bad.stderr
    run = ganzoo(
        "train", str(recipe), "--out", str(tmp_path / "run"), site=installed_plugin, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert list((tmp_path / "run" / "checkpoints").glob("step_*.pt"))
    rows = (tmp_path / "run" / "scalars.csv").read_text().splitlines()
    assert rows[0] == "step,name,value" and any(r.startswith("2,loss_g_l1,") for r in rows)
    assert any(r.startswith("final,val_l1,") for r in rows)


def test_broken_plugin_leaves_list_working_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "gz_broken_plugin.py").write_text("raise ImportError('missing dependency xyz')\n")
    info = tmp_path / "gz_broken_plugin-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gz-broken-plugin\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[ganzoo.generators]\nbroken_gen = gz_broken_plugin:Gen\n"
    )
    result = ganzoo("list", site=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "unet_256" in result.stdout and "patchgan" in result.stdout
    assert "warning" in result.stderr and "gz-broken-plugin 0.3" in result.stderr
    assert "missing dependency xyz" in result.stderr and "Traceback" not in result.stderr
    # using it is a one-line error, not a crash
    check = ganzoo(
        "check",
        str(ROOT / "recipes" / "quickstart.yaml"),
        "--set",
        "generator.name=broken_gen",
        site=tmp_path,
    )
    assert check.returncode == 2 and "failed to import" in check.stderr
    assert "Traceback" not in check.stderr
