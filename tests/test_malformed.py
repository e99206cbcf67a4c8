"""Malformed files, made here, give one or two lines and the right exit status, never a
traceback; where the rest of a file is usable the bad record is left out with a one-line note."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_recipe
from PIL import Image, PngImagePlugin

from ganzoo.cli import main
from ganzoo.errors import GanzooError, TrainingError
from ganzoo.run_dir import RunDir

GOOD = {"step": 2, "epoch": 0, "loss_d": 0.5, "loss_g_gan": 1.0, "ms_per_step": 10.0}
EVAL = {"split": "val", "mode": "eval", "n": 4, "step": 2, "l1": 0.3, "psnr": 12.0, "ssim": 0.4}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_short(err: str, lines: int = 2) -> None:
    assert "Traceback" not in err
    assert 0 < len(err.strip().splitlines()) <= lines, err


def fake_run(folder: Path) -> Path:
    """A run directory as training leaves it (recipe, one log record, an eval record, an
    environment record, one sample sheet), without training."""
    run = folder / "run"
    (run / "samples").mkdir(parents=True)
    (run / "eval").mkdir()
    (run / "recipe.yaml").write_text(tiny_recipe(folder / "data").to_yaml())
    (run / "metrics.jsonl").write_text(json.dumps(GOOD) + "\n")
    (run / "eval" / "val.json").write_text(json.dumps(EVAL))
    (run / "environment.json").write_text(json.dumps({"torch": torch.__version__}))
    Image.new("RGB", (8, 8)).save(run / "samples" / "step_00000002.png")
    return run


# -- ganzoo report on a run ------------------------------------------------------------------
METRICS_LINES = {
    "a list": (b"[1, 2]", "a JSON list"),
    "a number": (b"3", "a JSON int"),
    "not UTF-8": (b'{"step": 3, "loss_d": 1, "x": "\xff"}', "not UTF-8"),
    "nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "without step": (b'{"loss_d": 1.0, "ms_per_step": 3}', "no step"),
    "a string step": (b'{"step": "4", "loss_d": 1.0}', "no integer step"),
    "a 5000-digit step": (b'{"step": ' + b"7" * 5000 + b"}", "too long"),
}


@pytest.mark.parametrize("line,note", METRICS_LINES.values(), ids=list(METRICS_LINES))
def test_report_leaves_out_a_malformed_metrics_line(
    tmp_path: Path, capsys, line: bytes, note: str
) -> None:
    run = fake_run(tmp_path)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(line + b"\n" + json.dumps({**GOOD, "step": 4}).encode() + b"\n")
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0
    assert_short(err, 1)
    assert "metrics.jsonl: left out 1 unreadable line(s) (line 2" in err and note in err
    assert [r["step"] for r in RunDir(run).metrics()] == [2, 4]  # the rest is kept


@pytest.mark.parametrize(
    "ms", ["NaN", "Infinity", "1e308", '"fast"', "-5"], ids=["nan", "inf", "1e308", "str", "neg"]
)
def test_report_survives_any_ms_per_step(tmp_path: Path, capsys, ms: str) -> None:
    run = fake_run(tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(f'{{"step": 9000000000, "loss_d": 1.0, "ms_per_step": {ms}}}\n')
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0 and "Traceback" not in err
    assert "ms per step (median)" in (run / "report.html").read_text()


EVAL_RECORDS = {
    "a string l1": (json.dumps({**EVAL, "l1": "x"}).encode(), 'l1 is "x", not a number'),
    "a null psnr": (json.dumps({**EVAL, "psnr": None}).encode(), "psnr is null"),
    "no ssim": (json.dumps({k: v for k, v in EVAL.items() if k != "ssim"}).encode(), "no ssim"),
    "a list split": (json.dumps({**EVAL, "split": [1]}).encode(), "split is not a string"),
    "a string fid": (json.dumps({**EVAL, "fid": "x"}).encode(), "fid is"),
    "a list sheet": (json.dumps({**EVAL, "sheet": ["x"]}).encode(), "sheet is not a string"),
    "not UTF-8": (b'{"l1": "\xff\xfe"}', "not UTF-8"),
    "a list": (b"[]", "not an object"),
}


@pytest.mark.parametrize("data,note", EVAL_RECORDS.values(), ids=list(EVAL_RECORDS))
def test_report_leaves_out_a_malformed_eval_record(
    tmp_path: Path, capsys, data: bytes, note: str
) -> None:
    run = fake_run(tmp_path)
    (run / "eval" / "test.json").write_bytes(data)
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0
    assert_short(err, 1)
    assert "test.json" in err and note in err and "left out" in err
    assert [e["split"] for e in RunDir(run).eval_records()] == ["val"]  # the good one is kept


def test_report_leaves_out_sample_sheets_with_other_names(tmp_path: Path, capsys) -> None:
    run = fake_run(tmp_path)
    for name in ("step_abc.png", "step_.png", "step_" + "9" * 200 + ".png", "x.png"):
        Image.new("RGB", (8, 8)).save(run / "samples" / name, format="PNG")
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0
    assert_short(err, 1)
    assert "left out 4 file(s) not named step_<number>.png" in err
    assert [s for s, _ in RunDir(run).sample_sheets()] == [2]
    assert (run / "report.html").read_text().count('class="frame"') == 1


@pytest.mark.parametrize(
    "data,note",
    [
        (b"\x00\xffnot json", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b"{" * 3 + b"garbage", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["binary", "a list", "garbage", "deep"],
)
def test_report_leaves_out_a_malformed_environment(
    tmp_path: Path, capsys, data: bytes, note: str
) -> None:
    run = fake_run(tmp_path)
    (run / "environment.json").write_bytes(data)
    code, _, err = run_cli(capsys, "report", str(run))
    assert code == 0
    assert_short(err, 1)
    assert "environment.json" in err and note in err


def test_a_resume_drops_later_records_past_malformed_lines(tmp_path: Path) -> None:
    run = fake_run(tmp_path)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(
            b'{"step": "x"}\n[' + b"[" * 50_000 + b"\n" + json.dumps({**GOOD, "step": 8}).encode()
        )
    RunDir(run).drop_records_after(4)
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [2]


def test_ablation_progress_skips_a_deeply_nested_line(tmp_path: Path) -> None:
    from ganzoo.ablation.progress import last_record

    run = fake_run(tmp_path)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b"[" * 3000 + b"]" * 3000 + b"\n")
    assert last_record(run, tail=10_000) == GOOD


# -- ablation.json and claims ------------------------------------------------------------------
MANIFEST = {
    "format": "ganzoo-ablation-1",
    "name": "d",
    "base": "recipes/quickstart.yaml",
    "overrides": [],
    "axes": ["discriminator"],
    "budget": {"max_steps": 2},
    "seeds": [0],
    "eval": {"split": "val", "mode": "eval", "samples": 2},
    "variants": [{"name": "patchgan", "values": {"discriminator": "patchgan"}}],
}


@pytest.mark.parametrize(
    "data,note",
    [
        (b'{"name": "\xff"}', "not UTF-8"),
        (
            json.dumps({k: v for k, v in MANIFEST.items() if k != "eval"}).encode(),
            "eval is missing",
        ),
        (
            json.dumps({**MANIFEST, "variants": [{"name": "patchgan", "values": {}}]}).encode(),
            "variant patchgan has no value for axis discriminator",
        ),
        (json.dumps({**MANIFEST, "eval": {"split": 3}}).encode(), "eval.split"),
        (b"[]", "not a JSON object"),
    ],
    ids=["not UTF-8", "no eval", "an axis a variant lacks", "a bad split", "a list"],
)
def test_a_malformed_ablation_manifest_is_one_line(
    tmp_path: Path, capsys, data: bytes, note: str
) -> None:
    (tmp_path / "ablation.json").write_bytes(data)
    for args in (["report", str(tmp_path)], ["ablate", "--report", str(tmp_path)]):
        code, _, err = run_cli(capsys, *args)
        assert code == 2
        assert_short(err, 2)
        assert "ablation.json" in err and note in err and "ganzoo ablate" in err


@pytest.mark.parametrize("pid", ["abc", None, 1.5, [1], 10**30, -1])
def test_a_claim_whose_pid_is_not_a_process_id_is_judged_by_its_age(
    tmp_path: Path, pid: object
) -> None:
    from ganzoo.ablation.claims import Claim, claim_path, try_claim

    path = claim_path(tmp_path, "run__seed0")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "token": "t"}))
    held = try_claim(tmp_path, "run__seed0")  # fresh: left alone, no ValueError
    assert isinstance(held, dict) and held["token"] == "t"
    old = time.time() - 3600
    os.utime(path, (old, old))
    taken = try_claim(tmp_path, "run__seed0")  # stale by age: taken over
    assert isinstance(taken, Claim)
    taken.release()


# -- loggers -----------------------------------------------------------------------------------
def test_a_non_utf8_loggers_json_on_resume_is_a_warning(tmp_path: Path, recwarn) -> None:
    from ganzoo.training.logs import LoggerWarning, RunLogs

    (tmp_path / "loggers.json").write_bytes(b'{"wandb": "\xff"}')
    logs = RunLogs(tiny_recipe(tmp_path), tmp_path)
    logs.start(torch.device("cpu"), step=4, resumed=True)  # no UnicodeDecodeError
    [w] = [w for w in recwarn if issubclass(w.category, LoggerWarning)]
    assert "loggers.json" in str(w.message) and "not UTF-8" in str(w.message)


def test_a_logger_state_json_cannot_hold_is_not_saved(tmp_path: Path, recwarn) -> None:
    from ganzoo.loggers.base import Logger
    from ganzoo.training.logs import LoggerWarning, RunLogs

    class Odd(Logger):
        def state(self) -> dict:
            return {"run": object()}

    logs = RunLogs(tiny_recipe(tmp_path), tmp_path)
    logs.loggers["odd"] = Odd()
    logs.start(torch.device("cpu"), step=0, resumed=False)
    logs.finish({"l1": 0.1})
    assert not (tmp_path / "loggers.json").exists()
    messages = [str(w.message) for w in recwarn if issubclass(w.category, LoggerWarning)]
    assert messages and all("logger odd: its resume state is not saved" in m for m in messages)


def test_tensorboard_writer_thread_prints_no_traceback_on_a_full_disk(
    tmp_path: Path, monkeypatch, recwarn
) -> None:
    pytest.importorskip("tensorboard")
    from ganzoo.training.logs import LoggerWarning, RunLogs

    printed = []  # what would print a thread's traceback
    monkeypatch.setattr(threading, "excepthook", printed.append)
    logs = RunLogs(tiny_recipe(tmp_path, "train.loggers=[tensorboard]"), tmp_path)
    logs.start(torch.device("cpu"), step=0, resumed=False)
    writer = logs.loggers["tensorboard"].writer.file_writer.event_writer._async_writer

    def full(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    writer._writer.write = full
    logs.write({"step": 1, "loss_d": 1.0})
    writer._worker.join(timeout=30)  # the thread died on the write
    assert not writer._worker.is_alive()
    logs.write({"step": 2, "loss_d": 1.0})  # the stored error: the logger is dropped
    assert "tensorboard" not in logs.loggers
    [w] = [w for w in recwarn if issubclass(w.category, LoggerWarning)]
    assert "No space left on device" in str(w.message)
    assert printed == []


def test_threads_other_than_tensorboards_still_print(monkeypatch) -> None:
    pytest.importorskip("tensorboard")
    from ganzoo.loggers.tensorboard import _quiet_writer_threads

    printed = []
    monkeypatch.setattr(threading, "excepthook", printed.append)
    _quiet_writer_threads()

    class Writer(threading.Thread):
        def run(self) -> None:
            raise OSError(28, "No space left on device")

    Writer.__module__ = "tensorboard.summary.writer.event_file_writer"
    for thread in (threading.Thread(target=lambda: 1 / 0), Writer()):
        thread.start()
        thread.join()
    assert [type(args.exc_value) for args in printed] == [ZeroDivisionError]


# -- safetensors ------------------------------------------------------------------------------
def _safetensors(tmp_path: Path, **change: str) -> tuple[Path, dict]:
    from safetensors.torch import save_file

    from ganzoo.artifacts.safetensors import recipe_json
    from ganzoo.artifacts.schema import SAFETENSORS_FORMAT
    from ganzoo.build import build_generator

    recipe = tiny_recipe(tmp_path)
    weights = {k: v.contiguous() for k, v in build_generator(recipe).state_dict().items()}
    meta = {
        "format": SAFETENSORS_FORMAT,
        "recipe": recipe_json(recipe),
        "step": "3",
        "ema": "false",
    }
    meta.update({k: v for k, v in change.items() if k in meta})
    path = tmp_path / "g.safetensors"
    save_file(weights, str(path), metadata=meta)
    return path, weights


def test_safetensors_metadata_nested_200000_deep_is_one_line(tmp_path: Path, capsys) -> None:
    path, _ = _safetensors(tmp_path, recipe="[" * 200_000 + "]" * 200_000)
    code, _, err = run_cli(capsys, "export", str(path), "--out", str(tmp_path / "x.safetensors"))
    assert code == 2
    assert_short(err)
    assert "the recipe in its metadata is unreadable (nested too deeply)" in err


def test_a_5000_digit_safetensors_step_is_no_step(tmp_path: Path) -> None:
    from ganzoo.artifacts.loading import load_generator

    path, _ = _safetensors(tmp_path, step="9" * 5000)
    assert load_generator(path)[2].step is None


@pytest.mark.parametrize("change", ["extra", "missing", "shape"])
def test_a_safetensors_that_does_not_fit_names_the_key(tmp_path: Path, change: str) -> None:
    from safetensors.torch import save_file

    from ganzoo.artifacts.loading import load_generator

    path, weights = _safetensors(tmp_path)
    key = sorted(weights)[0]
    if change == "extra":
        weights["stowaway.weight"] = torch.zeros(2)
        key = "stowaway.weight"
    elif change == "missing":
        del weights[key]
    else:
        weights[key] = torch.zeros(1, 2, 3)
    meta = {k: v for k, v in _safetensors_meta(path).items()}
    save_file(weights, str(path), metadata=meta)
    with pytest.raises(TrainingError) as info:
        load_generator(path)
    assert key in str(info.value) and "\n" not in str(info.value)


def _safetensors_meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


# -- import options ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "family,key,value",
    [
        ("pix2pix", "init_gain", "abc"),
        ("pix2pix", "load_size", "abc"),
        ("pix2pix", "crop_size", "7" * 5000),
        ("pix2pix", "num_threads", "7" * 5000),
        ("pix2pix", "lr", "1" * 5000),
        ("pix2pix", "lambda_L1", "nan"),
        ("pix2pixhd", "fineSize", "7" * 5000),
        ("pix2pixhd", "label_nc", "abc"),
        ("pix2pixhd", "lambda_feat", "abc"),
    ],
)
def test_import_options_refuses_a_value_that_is_not_a_number(
    tmp_path: Path, capsys, family: str, key: str, value: str
) -> None:
    path = tmp_path / "opt.txt"
    path.write_text(f"{key:>25}: {value}\n")
    code, out, err = run_cli(capsys, "import", "options", str(path), "--family", family)
    assert code == 2 and out == ""
    assert_short(err)
    assert f"--{key} " in err and "is not" in err
    code, out, err = run_cli(capsys, "import", "options", "--flags", f"--{key} {value}")
    if family == "pix2pix":
        assert code == 2 and f"--{key} " in err
        assert_short(err)


def test_import_options_refuses_an_image_or_a_checkpoint(tmp_path: Path, capsys) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "netG: unet_128")  # a 'key: value' line inside the binary
    Image.new("RGB", (16, 16)).save(tmp_path / "x.png", pnginfo=info)
    torch.save({"note": "\nngf: 32\n", "w": torch.zeros(4)}, tmp_path / "x.pth")
    for name in ("x.png", "x.pth"):
        code, out, err = run_cli(capsys, "import", "options", str(tmp_path / name))
        assert code == 2 and out == ""
        assert_short(err)
        assert "not a text file" in err and "train_opt.txt" in err


# -- the command line --------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["--version"], ["list", "generator"]])
def test_a_closed_stdout_is_no_traceback(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = " ".join([sys.executable, "-m", "ganzoo", *args]) + " >&-"
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.strip() == "warning: stdout is closed (>&-); what ganzoo prints there is "
        "discarded"
    )


@pytest.mark.parametrize("command", ["eval", "export"])
def test_a_mistyped_run_directory_is_not_sent_to_the_hub(
    tmp_path: Path, capsys, monkeypatch, command: str
) -> None:
    import ganzoo.artifacts.sources as sources

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Hub was asked")

    monkeypatch.setattr(sources, "resolve_hub_source", no_network)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "t0").mkdir(parents=True)
    code, _, err = run_cli(capsys, command, "runs/t0typo")
    assert code == 2
    assert_short(err)
    assert "runs/t0typo: no such run directory" in err
    assert sources.is_hub_source("someone/model")  # no local folder 'someone': the Hub


def test_a_rank_whose_peer_died_says_so_in_one_line(capsys, monkeypatch) -> None:
    import torch.distributed  # noqa: F401 - a training has imported it

    import ganzoo.training.trainer as trainer

    def peer_died(*args: object, **kwargs: object) -> None:  # what gloo raises (torch 2.x)
        raise RuntimeError(
            "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by "
            "peer [127.0.0.1]:45192. This is typically caused by a remote worker crashing."
        )

    monkeypatch.setattr(trainer, "train", peer_died)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, _, err = run_cli(capsys, "train", str(ROOT / "recipes" / "quickstart.yaml"))
    assert code == 1
    assert_short(err)
    assert "rank 0: another process of this run stopped (Connection closed by peer)" in err
    assert "--resume" in err
    monkeypatch.setenv("WORLD_SIZE", "1")  # a plain run's RuntimeError is a bug: traceback
    with pytest.raises(RuntimeError):
        main(["train", str(ROOT / "recipes" / "quickstart.yaml")])


def test_the_nan_guard_without_a_checkpoint_advises_a_new_start(
    tiny_data: Path, tmp_path: Path
) -> None:
    from ganzoo.training.trainer import Trainer

    recipe = tiny_recipe(tiny_data, "train.max_steps=4", "train.checkpoint_every=1000")
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    real_g_loss = trainer.update.objective.g_loss
    trainer.update.objective.g_loss = lambda logits: real_g_loss(logits) * float("nan")
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    message = str(info.value)
    assert "no checkpoint was written yet" in message and "--resume" not in message
    assert f"start again with --out {tmp_path / 'run'} --overwrite" in message


def test_read_json_errors_are_one_line(tmp_path: Path) -> None:
    from ganzoo.safe_io import read_json

    for data, note in ((b"\xff", "not UTF-8"), (b"1" * 5000, "too long"), (b"{", "not JSON")):
        (tmp_path / "x.json").write_bytes(data)
        with pytest.raises(GanzooError, match=note) as info:
            read_json(tmp_path / "x.json")
        assert "\n" not in str(info.value)
    with pytest.raises(GanzooError, match="no such file"):
        read_json(tmp_path / "missing.json")


@pytest.mark.slow
def test_the_survivor_of_a_killed_rank_prints_one_line(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        tiny_recipe(tiny_data, "train.max_steps=100000", "train.log_every=1").to_yaml()
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ranks = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        command = [sys.executable, "-m", "ganzoo", "train", str(recipe), "--out"]
        ranks.append(
            subprocess.Popen(
                [*command, str(tmp_path / "run")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        metrics = tmp_path / "run" / "metrics.jsonl"
        deadline = time.monotonic() + 300  # a hang guard, not a timing assertion
        while not (metrics.is_file() and metrics.read_text().strip()):
            assert time.monotonic() < deadline and ranks[0].poll() is None, "no step was logged"
            time.sleep(0.2)
        ranks[1].kill()  # rank 1 dies mid-run; rank 0 is in (or enters) a collective
        _, err = ranks[0].communicate(timeout=300)
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
            p.wait()
    assert ranks[0].returncode == 1, err
    assert "Traceback" not in err
    assert "rank 0: another process of this run stopped" in err
