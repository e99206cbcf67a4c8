"""Stop means stop: signals to `ganzoo train` and `ganzoo ablate --jobs 2` (real processes, tiny
recipes), workers that die with their launcher, and the exit codes of docs/reliability.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import test_ablation
from conftest import ROOT

from ganzoo.ablation.claims import read_status
from ganzoo.artifacts.checkpoint import latest_checkpoint

TINY = [*test_ablation.TINY, "train.device=cpu", "train.checkpoint_every=100000"]
PATCHGAN = {"name": "patchgan", "n_layers": 2, "ndf": 4, "norm": "batch"}
WAIT_S = 180  # a bound on waits for slow shared machines, never a measured threshold


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen | None = None) -> None:
    """Poll ``condition`` until it holds; fail (killing ``proc``'s group) past WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited {proc.returncode} early:\n{out}\n{err}")
        if time.monotonic() > deadline:
            if proc is not None:
                os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("condition not reached")
        time.sleep(0.05)


def ablate(tmp_path: Path, data: Path, seeds: list[int], steps: int) -> subprocess.Popen:
    """`ganzoo ablate --jobs 2` of one variant x ``seeds`` in a session of its own."""
    spec = test_ablation.write_spec(
        tmp_path,
        budget={"max_steps": steps},
        seeds=seeds,
        axes={"discriminator": {"patchgan": PATCHGAN}},
    )
    args = ["ablate", str(spec), "--out", str(tmp_path / "out"), "--jobs", "2"]
    args += ["--threads-per-run", "1"]
    for s in [f"data.root={data}", *TINY]:
        args += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ganzoo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def training(out: Path, run: str) -> bool:
    """The run's worker is in its training loop (it logged a step)."""
    status = read_status(out, run) or {}
    metrics = out / "runs" / run / "metrics.jsonl"
    return status.get("state") == "running" and metrics.is_file() and metrics.stat().st_size > 0


def worker_pid(out: Path, run: str) -> int:
    return int(read_status(out, run)["pid"])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"  # a zombie has exited


@pytest.mark.parametrize(
    "to_group, sig, code",
    [(True, signal.SIGINT, 130), (False, signal.SIGTERM, 143)],
    ids=["ctrl-c-to-the-group", "sigterm-to-the-launcher-alone"],
)
def test_a_signal_stops_the_running_runs_and_starts_no_queued_one(
    tiny_data: Path, tmp_path: Path, to_group: bool, sig: int, code: int
) -> None:
    proc = ablate(tmp_path, tiny_data, seeds=[0, 1, 2, 3], steps=100_000)
    out = tmp_path / "out"
    running = ["patchgan__seed0", "patchgan__seed1"]
    wait_for(lambda: all(training(out, r) for r in running), proc)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        _, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "4 run(s) failed or stopped" in err
    for run in running:  # stopped after their current step, with a checkpoint to resume
        assert read_status(out, run)["state"] == "stopped"
        assert latest_checkpoint(out / "runs" / run / "checkpoints") is not None
    for run in ("patchgan__seed2", "patchgan__seed3"):  # queued: never started
        assert read_status(out, run) is None and not (out / "runs" / run).exists()


def test_workers_die_with_a_killed_launcher(tiny_data: Path, tmp_path: Path) -> None:
    proc = ablate(tmp_path, tiny_data, seeds=[0, 1, 2], steps=100_000)
    out = tmp_path / "out"
    running = ["patchgan__seed0", "patchgan__seed1"]
    wait_for(lambda: all(training(out, r) for r in running), proc)
    pids = [worker_pid(out, r) for r in running]
    proc.kill()  # kill -9: no handler runs in the launcher
    proc.communicate(timeout=WAIT_S)
    try:
        wait_for(lambda: not any(alive(p) for p in pids))
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    for run in running:  # the workers saved and stopped (SIGTERM), as on any other SIGTERM
        assert read_status(out, run)["state"] == "stopped"
        assert latest_checkpoint(out / "runs" / run / "checkpoints") is not None
    assert read_status(out, "patchgan__seed2") is None


def test_a_killed_worker_fails_only_its_own_run(tiny_data: Path, tmp_path: Path) -> None:
    proc = ablate(tmp_path, tiny_data, seeds=[0, 1, 2], steps=40)
    out = tmp_path / "out"
    wait_for(lambda: training(out, "patchgan__seed0"), proc)
    os.kill(worker_pid(out, "patchgan__seed0"), signal.SIGKILL)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 2, err
    assert "1 run(s) failed or stopped (patchgan__seed0;" in err
    status = read_status(out, "patchgan__seed0")
    assert status["state"] == "failed" and "killed by SIGKILL" in status["error"]
    for run in ("patchgan__seed1", "patchgan__seed2"):  # the other one and the queued one
        assert read_status(out, run)["state"] == "done"
    results = (out / "results.csv").read_text()
    assert "patchgan,1," in results and "patchgan,2," in results


def test_a_run_left_unfinished_by_an_unreadable_claim_fails_the_command(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    from ganzoo.ablation.claims import claim_path
    from ganzoo.cli import main

    spec = test_ablation.write_spec(
        tmp_path, budget={"max_steps": 1}, seeds=[0], axes={"discriminator": {"p": PATCHGAN}}
    )
    out = tmp_path / "out"
    claim = claim_path(out, "p__seed0")
    claim.parent.mkdir(parents=True)
    claim.write_bytes(b"\xff not json")  # fresh (its mtime is now): left alone
    args = ["ablate", str(spec), "--out", str(out)]
    for s in [f"data.root={tiny_data}", *TINY]:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 run(s) unfinished, held by another launch (p__seed0)" in err
    assert claim.read_bytes() == b"\xff not json"  # untouched


# -- exit codes of `ganzoo train` -----------------------------------------------------------------
def start_training(tmp_path: Path, data: Path, *extra: str) -> subprocess.Popen:
    """`ganzoo train` of the tiny recipe for (nearly) ever, in a session of its own."""
    from conftest import tiny_recipe

    recipe = tmp_path / "tiny.yaml"
    overrides = ("train.max_steps=100000", "train.log_every=1", "train.device=cpu")
    recipe.write_text(tiny_recipe(data, *overrides).to_yaml())
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ganzoo", "train", str(recipe), "--out", str(tmp_path / "run")]
        + list(extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen, run: Path, sig: int, to_group: bool) -> str:
    """Send ``sig`` once the run logged a step; its stderr once it exited."""
    metrics = run / "metrics.jsonl"
    wait_for(lambda: metrics.is_file() and metrics.stat().st_size > 0, proc)
    (os.killpg if to_group else os.kill)(proc.pid, sig)
    try:
        return proc.communicate(timeout=WAIT_S)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_stopped_training_saves_then_exits_non_zero(
    tiny_data: Path, tmp_path: Path, sig: int, code: int, word: str
) -> None:
    proc = start_training(tmp_path, tiny_data)
    err = stop(proc, tmp_path / "run", sig, to_group=sig == signal.SIGINT)
    assert proc.returncode == code, err
    assert word in err and "Traceback" not in err
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None  # saved first


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_a_stopped_torchrun_training_is_one_line(
    tiny_data: Path, tmp_path: Path, sig: int, code: int, word: str
) -> None:
    proc = start_training(tmp_path, tiny_data, "--nproc", "2")
    err = stop(proc, tmp_path / "run", sig, to_group=sig == signal.SIGINT)
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    assert "SignalException" not in err and "death signal" not in err, err
    assert err.strip().splitlines()[-1].startswith(word)
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None


def test_a_full_disk_exits_1_as_documented(tiny_data: Path, tmp_path: Path, monkeypatch, capsys):
    import errno

    from conftest import tiny_recipe

    import ganzoo.training.logs as logs
    from ganzoo.cli import main

    def full(self, record):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(logs.MetricsLog, "write", full)
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(tiny_recipe(tiny_data, "train.max_steps=2").to_yaml())
    assert main(["train", str(recipe), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and "\n" not in err


@pytest.mark.parametrize("distributed", [False, True])
def test_a_second_ctrl_c_stops_at_once_only_outside_torchrun(distributed: bool) -> None:
    """torchrun forwards the group's Ctrl-C, so each rank got SIGINT twice and sometimes
    stopped without its checkpoint; a second Ctrl-C now means "now" only in one process."""
    from types import SimpleNamespace

    from ganzoo.training.trainer import stop_on_signals

    trainer = SimpleNamespace(stop_requested=None, dist=SimpleNamespace(enabled=distributed))
    trainer.request_stop = lambda reason: setattr(
        trainer, "stop_requested", trainer.stop_requested or reason
    )
    with stop_on_signals(trainer):
        os.kill(os.getpid(), signal.SIGINT)
        assert trainer.stop_requested == "SIGINT"
        if distributed:
            os.kill(os.getpid(), signal.SIGINT)
            assert trainer.stop_requested == "SIGINT"
        else:
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
