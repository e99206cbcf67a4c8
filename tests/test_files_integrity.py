"""Files from others and integrity: what ganzoo reads from a run directory, where it writes, and
which weights it refuses.

* a report or a Hub export embeds only regular files inside the run directory that are what
  they claim to be (a PNG is a PNG), and says in one line what it skipped;
* every file ganzoo writes goes through the atomic writer: a link planted at its name is
  replaced, never written through, and a run folder (eval/, samples/, export/) that is a link
  out of the run is refused; the file outside is never touched;
* weights holding a NaN or an infinity are refused by every loader in one line naming the file;
  a generator whose output is not finite never writes an image;
* a pretrained file is checked against a pinned SHA-256 when one is known;
* an ablation run whose eval record holds a non-numeric score is left out in one line.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, train_tiny_run
from PIL import Image

from ganzoo.cli import main
from ganzoo.errors import GanzooError

SECRET = "SECRET-7f3a"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data: Path) -> Path:
    """A tiny trained run with an eval record and sheet (copied by :func:`run` per test)."""
    run_dir = train_tiny_run(tiny_data, tmp_path_factory.mktemp("files"))
    assert main(["eval", str(run_dir), "--num-samples", "2"]) == 0
    return run_dir


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the run holding files no ganzoo command may read or write."""
    folder = tmp_path / "outside"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(folder / "secret.png")
    secret = {"token": SECRET, "split": "x", "l1": 0.1, "psnr": 1.0, "ssim": 0.1}
    (folder / "secret.json").write_text(json.dumps(secret))
    (folder / "victim.txt").write_text("untouched")
    return folder


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.startswith("error")]
    assert len(lines) == 1, err
    return lines[0]


# -- what a report or an export reads --------------------------------------------------------
def test_report_embeds_only_real_pngs_inside_the_run(run: Path, outside: Path, capsys) -> None:
    secret_png = (outside / "secret.png").read_bytes()
    record = json.loads((run / "eval" / "val.json").read_text())
    record["sheet"] = str(outside / "secret.png")  # a record naming a file outside
    (run / "eval" / "val.json").write_text(json.dumps(record))
    (run / "eval" / "val.png").unlink()
    (run / "samples").mkdir(exist_ok=True)
    (run / "samples" / "step_00000009.png").symlink_to(outside / "secret.png")
    (run / "samples" / "step_00000010.png").write_text("not a png at all")
    (run / "eval" / "test.json").symlink_to(outside / "secret.json")
    env = run / "environment.json"
    env.unlink(missing_ok=True)
    env.symlink_to(outside / "secret.json")

    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    err = capsys.readouterr().err
    assert base64.b64encode(secret_png).decode() not in html
    assert SECRET not in html
    assert "step_00000009.png is a symbolic link" in err
    assert "step_00000010.png: not a PNG image" in err
    assert "environment.json is a symbolic link" in err
    assert "test.json" in err and "skipped" in err
    assert "eval/secret.png: No such file" in err  # looked for in eval/ only, by name


def test_read_inside_refuses_links_folders_and_escapes(tmp_path: Path, outside: Path) -> None:
    from ganzoo.safe_io import UnsafePathError, read_inside

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "ok.png").write_bytes(png_bytes())
    assert read_inside(root / "ok.png", root, png=True) == png_bytes()
    (root / "link").symlink_to(outside)
    for path, reason in (
        (root / "link" / "secret.png", "link is a symbolic link"),
        (outside / "secret.png", "outside"),
        (root / "sub" / ".." / ".." / "outside" / "secret.png", "outside"),
        (root / "sub", "not a regular file"),
    ):
        with pytest.raises(UnsafePathError, match=reason):
            read_inside(path, root, png=True)


def test_export_hub_never_copies_a_linked_sheet(run: Path, outside: Path, capsys) -> None:
    sheet = run / "eval" / "val.png"
    own = sheet.read_bytes()
    shutil.copy(sheet, run / "eval" / "a_own.png")
    sheet.unlink()
    sheet.symlink_to(outside / "secret.png")  # sorts last: the one export used to take
    out = run.parent / "hub"
    assert main(["export", str(run), "--format", "hub", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped" in err and "val.png" in err and "symbolic link" in err
    assert (out / "samples.png").read_bytes() == own
    assert not (out / "samples.png").is_symlink()
    assert "## Samples" in (out / "README.md").read_text()


# -- where ganzoo writes -----------------------------------------------------------------------
def test_eval_replaces_planted_links_and_never_writes_outside(run: Path, outside: Path) -> None:
    victim = outside / "victim.txt"
    for name in ("val.json", "val.png"):
        (run / "eval" / name).unlink()
        (run / "eval" / name).symlink_to(victim)
    assert main(["eval", str(run), "--num-samples", "2"]) == 0
    assert victim.read_text() == "untouched"
    for name in ("val.json", "val.png"):
        assert not (run / "eval" / name).is_symlink()
    assert json.loads((run / "eval" / "val.json").read_text())["n"] == 4


def test_eval_refuses_an_eval_folder_linking_out_of_the_run(
    run: Path, outside: Path, capsys
) -> None:
    shutil.rmtree(run / "eval")
    (run / "eval").symlink_to(outside)
    before = sorted(p.name for p in outside.iterdir())
    assert main(["eval", str(run)]) == 2
    assert "outside" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in outside.iterdir()) == before


def test_plot_translate_and_exports_replace_planted_links(
    run: Path, outside: Path, tiny_data: Path
) -> None:
    victim = outside / "victim.txt"
    (run / "losses.png").symlink_to(victim)
    assert main(["plot", str(run)]) == 0
    out = run.parent / "translated"
    out.mkdir()
    (out / "0.png").symlink_to(victim)
    args = ["translate", str(run), "-i", str(tiny_data / "val"), "-o", str(out), "--plain"]
    assert main(args) == 0
    (run / "export").mkdir()
    for fmt, name in (("safetensors", "generator.safetensors"), ("torchscript", "x.pt")):
        (run / "export" / name).symlink_to(victim)
        target = run / "export" / name
        assert main(["export", str(run), "--format", fmt, "--out", str(target)]) == 0
        assert not target.is_symlink()
    assert victim.read_text() == "untouched"
    for path in (run / "losses.png", out / "0.png"):
        assert not path.is_symlink() and Image.open(path).format == "PNG"


def test_export_refuses_an_export_folder_linking_out(run: Path, outside: Path, capsys) -> None:
    (run / "export").symlink_to(outside)
    assert main(["export", str(run), "--format", "safetensors"]) == 2
    assert "outside" in one_line(capsys.readouterr().err)
    assert not (outside / "generator.safetensors").exists()


def test_atomic_writer_replaces_links_and_refuses_linked_folders(
    tmp_path: Path, outside: Path
) -> None:
    from ganzoo.safe_io import UnsafePathError, open_append, write_bytes_atomic

    victim = outside / "victim.txt"
    root = tmp_path / "root"
    root.mkdir()
    (root / "f.txt").symlink_to(victim)
    (root / f".f.txt.tmp-{os.getpid()}").symlink_to(victim)  # a planted temporary name
    write_bytes_atomic(root / "f.txt", b"new", within=root)
    assert (root / "f.txt").read_bytes() == b"new" and victim.read_text() == "untouched"
    (root / "sub").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="outside"):
        write_bytes_atomic(root / "sub" / "victim.txt", b"x", within=root)
    (root / "log").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_append(root / "log")
    assert victim.read_text() == "untouched"


def test_training_never_writes_through_planted_links(
    trained: Path, tmp_path: Path, outside: Path, capsys
) -> None:
    from ganzoo.run_dir import RunDir
    from ganzoo.samples import save_grid

    victim = outside / "victim.txt"
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / ".lock").symlink_to(victim)  # acquire used to truncate the lock file
    with pytest.raises(GanzooError, match="symbolic link"):
        RunDir(folder).acquire()
    (folder / "step.png").symlink_to(victim)
    x = torch.zeros(1, 3, 8, 8)
    save_grid(folder / "step.png", x, x, x, within=folder)
    assert not (folder / "step.png").is_symlink()
    # a resume into a run whose samples/ links out is refused before anything is written
    run = tmp_path / "resumed"
    shutil.copytree(trained, run)
    shutil.rmtree(run / "samples")
    (run / "samples").symlink_to(outside)
    code = main(["train", "--resume", str(run), "--set", "train.max_steps=4"])
    assert code == 2 and "samples is a link" in one_line(capsys.readouterr().err)
    assert victim.read_text() == "untouched" and sorted(p.name for p in outside.iterdir()) == [
        "secret.json",
        "secret.png",
        "victim.txt",
    ]


# -- non-finite weights ------------------------------------------------------------------------
def poisoned(state: dict, key: str) -> dict:
    state = dict(state)
    state[key] = torch.full_like(state[key], float("nan"))
    return state


def test_a_nan_checkpoint_is_refused_in_one_line(run: Path, tiny_data: Path, capsys) -> None:
    ckpt = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(ckpt, weights_only=True)
    state["generator"] = poisoned(state["generator"], "model.model.0.weight")
    state.pop("ema", None)
    torch.save(state, ckpt)
    out = run.parent / "out"
    code = main(["translate", str(run), "-i", str(tiny_data / "val"), "-o", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(ckpt) in line and "NaN or infinite" in line
    assert not out.exists() or not any(out.iterdir())  # no black images


def test_a_nan_safetensors_and_hub_folder_are_refused(run: Path, capsys) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    hub = run.parent / "hub"
    assert main(["export", str(run), "--format", "hub", "--out", str(hub)]) == 0
    model = hub / "model.safetensors"
    with safe_open(str(model), framework="pt") as f:
        meta = f.metadata()
        weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    key = next(k for k in weights if k.endswith("weight"))
    weights[key] = torch.full_like(weights[key], float("inf"))
    save_file(weights, str(model), metadata=meta)
    capsys.readouterr()
    for source in (model, hub):
        assert main(["export", str(source), "--format", "safetensors", "--out", "x.st"]) == 2
        line = one_line(capsys.readouterr().err)
        assert str(model) in line and "NaN or infinite" in line


def test_a_nan_upstream_file_is_refused_by_import_and_fetch(
    tmp_path: Path, file_server, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import dataclasses

    from ganzoo import pretrained, registry

    net = registry.create("generator", "unet_256", 3, 3, ngf=8, norm="batch", dropout=True)
    state = poisoned(net.state_dict(), "model.model.0.weight")
    path = tmp_path / "latest_net_G.pth"
    torch.save(state, path)
    flags = "--netG unet_256 --ngf 8 --norm batch"
    args = ["import", "weights", str(path), "--out", str(tmp_path / "imp"), "--flags", flags]
    assert main(args) == 2
    line = one_line(capsys.readouterr().err)
    assert str(path) in line and "NaN or infinite" in line
    assert not (tmp_path / "imp").exists()

    entry = pretrained.CATALOG["facades_label2photo"]
    small = dataclasses.replace(entry, flags=entry.flags.replace("--ngf 64", "--ngf 8"))
    monkeypatch.setitem(pretrained.CATALOG, entry.name, small)
    file_server.files["/m/facades_label2photo.pth"] = path.read_bytes()
    url = file_server.url("/m")
    code = main(["pretrained", "fetch", entry.name, "--to", str(tmp_path / "z"), "--from", url])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "NaN or infinite" in line
    assert not (tmp_path / "z" / entry.name / "checkpoints").exists()


def test_a_generator_whose_output_is_not_finite_writes_nothing() -> None:
    from ganzoo.evaluation.inference import translate_batch

    class Broken(torch.nn.Module):
        size_divisor, min_side = 1, 1

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("inf")

    with pytest.raises(GanzooError, match="NaN or infinite"):
        translate_batch(Broken(), torch.ones(1, 3, 4, 4), pad=False)


# -- pinned checksums of pretrained files ------------------------------------------------------
def test_pretrained_files_are_checked_against_a_pinned_sha256(
    tmp_path: Path, file_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from ganzoo import pretrained, registry

    entry = pretrained.CATALOG["facades_label2photo"]
    assert hasattr(entry, "sha256") and hasattr(entry, "size")
    net = registry.create("generator", "unet_256", 3, 3, ngf=8, norm="batch", dropout=True)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    data = buffer.getvalue()
    file_server.files["/m/facades_label2photo.pth"] = data
    url = file_server.url("/m")
    good = hashlib.sha256(data).hexdigest()
    small = dataclasses.replace(
        entry, flags=entry.flags.replace("--ngf 64", "--ngf 8"), sha256="0" * 64
    )
    monkeypatch.setitem(pretrained.CATALOG, entry.name, small)
    with pytest.raises(GanzooError, match="SHA-256 is") as info:  # tampered: refused, deleted
        pretrained.fetch_pretrained(entry.name, tmp_path / "a", base_url=url, progress=False)
    assert "\n" not in str(info.value) and not list((tmp_path / "a").glob("*.pth*"))
    monkeypatch.setitem(pretrained.CATALOG, entry.name, dataclasses.replace(small, sha256=good))
    fetched = pretrained.fetch_pretrained(entry.name, tmp_path / "b", base_url=url, progress=False)
    assert fetched.downloaded and fetched.sha256 == good
    # no pin: imported with a warning giving the hash to pin
    monkeypatch.setitem(pretrained.CATALOG, entry.name, dataclasses.replace(small, sha256=None))
    with pytest.warns(UserWarning, match=f"no SHA-256 to check it against.*{good}"):
        pretrained.fetch_pretrained(entry.name, tmp_path / "c", base_url=url, progress=False)
    with pytest.raises(GanzooError, match="64 hexadecimal"):
        pretrained.fetch_pretrained(entry.name, tmp_path / "d", base_url=url, sha256="abc")


# -- an ablation's scores ----------------------------------------------------------------------
def test_an_ablation_run_with_a_non_numeric_score_is_left_out_and_rescored(
    tmp_path: Path, tiny_data: Path
) -> None:
    from ganzoo.ablation import load_plan, run_ablation, write_results

    spec = {
        "name": "scores",
        "base": str(ROOT / "recipes" / "quickstart.yaml"),
        "budget": {"max_steps": 1},
        "seeds": [0],
        "eval": {"split": "val", "mode": "eval", "samples": 1},
        "axes": {"optim.lr_g": [0.0002, 0.0004]},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    sets = [
        f"data.root={tiny_data}",
        "data.load_size=36",
        "data.crop_size=32",
        "data.batch_size=2",
        "data.num_workers=0",
        "data.direction=AtoB",
        "generator={name: unet, num_downs: 5, ngf: 4, norm: batch}",
        "discriminator={name: patchgan, n_layers: 2, ndf: 4, norm: batch}",
        "train.precision=fp32",
        "train.sample_every=1000",
        "train.val_batches=1",
    ]
    plan = load_plan(path, sets)
    out = tmp_path / "out"
    run_ablation(plan, out, progress=False)
    record_path = out / "runs" / "0.0002__seed0" / "eval" / "val.json"
    record = json.loads(record_path.read_text())
    record["l1"] = "-1"  # a string that would win if it were averaged
    record_path.write_text(json.dumps(record))
    with pytest.warns(UserWarning, match=r"'l1' is '-1', not a finite number; run \S+ is left"):
        report = write_results(out)
    assert [s.name for s in report.summaries] == ["0.0004"]
    outcomes = run_ablation(plan, out, progress=False)  # the run is scored again
    assert sorted(o.action for o in outcomes) == ["evaluated", "skipped"]
    assert isinstance(json.loads(record_path.read_text())["l1"], float)
