"""Ablation launchers: --jobs N gives the sequential numbers, submitit runs the jobs, claims keep
two launches from training a run twice, failures are recorded and retried, and the statistics
match scipy."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import test_ablation
from conftest import ROOT
from rich.console import Console
from scipy import stats as st

from ganzoo.ablation import compare_to_base, load_plan, run_ablation, write_results
from ganzoo.ablation import job as job_module
from ganzoo.ablation.claims import claim_path, read_status, try_claim, write_status
from ganzoo.ablation.progress import ProgressView, progress_table, run_progress
from ganzoo.ablation.statistics import (
    NEEDS_MORE,
    SIGNIFICANT,
    compare,
    compare_variants,
    power_paired,
    seeds_needed,
)
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.launchers.base import build_launcher
from ganzoo.report import write_html_report

TINY = [*test_ablation.TINY, "train.device=cpu"]  # 32x32, tiny widths, deterministic
VARIANTS = {
    "patchgan": {"name": "patchgan", "n_layers": 2, "ndf": 4, "norm": "batch"},
    "multiscale": {"name": "multiscale", "num_d": 2, "n_layers": 2, "ndf": 4, "norm": "batch"},
}
BUDGET = 2
COMPARED = ("variant", "seed", "loss_d", "loss_g_gan", "loss_g_l1", "l1", "psnr", "ssim")


def write_spec(folder: Path, **changes) -> Path:
    """The tiny spec of test_ablation: 2 discriminators, 1 seed, 2 steps (``changes`` apply)."""
    tiny = {"budget": {"max_steps": BUDGET}, "seeds": [0], "axes": {"discriminator": VARIANTS}}
    return test_ablation.write_spec(folder, **{**tiny, **changes})


def cli_args(spec: Path, out: Path, data: Path, *extra: str) -> list[str]:
    args = ["ablate", str(spec), "--out", str(out), *extra]
    for s in [f"data.root={data}", *TINY]:
        args += ["--set", s]
    return args


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sequential(tiny_data: Path, tmp_path_factory) -> Path:
    """The tiny ablation trained one run after another with 1 torch thread per run; --fid asked
    for without Inception weights (a note, and the ablation goes on)."""
    folder = tmp_path_factory.mktemp("sequential")
    out = folder / "out"
    args = cli_args(write_spec(folder), out, tiny_data, "--threads-per-run", "1", "--fid")
    old = os.environ.get("GANZOO_INCEPTION_WEIGHTS")
    os.environ["GANZOO_INCEPTION_WEIGHTS"] = str(folder / "no-such-weights.pt")
    try:
        assert main(args) == 0
    finally:
        if old is None:
            del os.environ["GANZOO_INCEPTION_WEIGHTS"]
        else:
            os.environ["GANZOO_INCEPTION_WEIGHTS"] = old
    return out


def test_fid_without_weights_is_left_out(sequential: Path) -> None:
    rows = read_rows(sequential)
    assert len(rows) == 2 and "fid" not in rows[0]


def test_lpips_and_dists_scores_become_columns(sequential: Path, tmp_path: Path) -> None:
    """Runs scored with LPIPS / DISTS (their weights were cached) get those columns, compared
    like the other quality metrics (lower is better)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sequential, out)
    for i, path in enumerate(sorted(out.glob("runs/*/eval/val.json"))):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "lpips_vgg": 0.25 + i / 10, "dists": 0.5}))
    write_results(out)
    rows = read_rows(out)
    assert sorted(float(r["lpips_vgg"]) for r in rows) == [0.25, 0.35]
    assert {r["dists"] for r in rows} == {"0.5"} and "lpips_alex" not in rows[0]
    table = (out / "results.md").read_text()
    assert "LPIPS-vgg ↓" in table and "DISTS ↓" in table and "LPIPS-alex" not in table


def test_jobs_2_gives_exactly_the_sequential_numbers(
    sequential: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path)
    assert main(cli_args(spec, out, tiny_data, "--jobs", "2", "--threads-per-run", "1")) == 0
    parallel, alone = read_rows(out), read_rows(sequential)
    assert [[r[k] for k in COMPARED] for r in parallel] == [[r[k] for k in COMPARED] for r in alone]
    assert {r["threads"] for r in parallel} == {r["threads"] for r in alone} == {"1"}
    pids = {read_status(out, f"{v}__seed0")["pid"] for v in VARIANTS}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    assert all(read_status(out, f"{v}__seed0")["device"] == "cpu" for v in VARIANTS)
    assert not list((out / "runs").glob("*.claim"))  # released
    # a re-run with other settings skips the finished runs and keeps how they were trained
    assert main(cli_args(spec, out, tiny_data, "--threads-per-run", "2")) == 0
    assert {r["threads"] for r in read_rows(out)} == {"1"}
    assert {read_status(out, f"{v}__seed0")["pid"] for v in VARIANTS} == pids


def test_submitit_local_executor_runs_the_ablation(
    sequential: Path, tiny_data: Path, tmp_path: Path, monkeypatch
) -> None:
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), *sys.path]))
    out = tmp_path / "out"
    extra = ["--launcher", "submitit", "--gpus-per-node", "0", "--cpus-per-task", "1"]
    extra += ["--launcher-opt", "cluster=local", "--launcher-opt", "poll_s=0.5", "--time", "10"]
    assert main(cli_args(write_spec(tmp_path), out, tiny_data, *extra)) == 0
    rows = read_rows(out)
    assert [[r[k] for k in COMPARED] for r in rows] == [
        [r[k] for k in COMPARED] for r in read_rows(sequential)
    ]
    assert any((out / "submitit").iterdir())  # submitit's own logs and pickles


def test_a_missing_submitit_is_one_line_with_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(GanzooError) as info:
        build_launcher({"name": "submitit", "partition": "gpu"})
    assert "pip install 'ganzoo[slurm]'" in str(info.value) and "\n" not in str(info.value)


def test_unknown_launcher_parameter_names_the_valid_ones() -> None:
    with pytest.raises(GanzooError, match="takes no parameter 'partition'"):
        build_launcher(None, "local", {"partition": "gpu"})


def test_a_live_claim_is_left_alone_and_a_stale_one_taken_over(
    tiny_data: Path, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, axes={"discriminator": {"patchgan": VARIANTS["patchgan"]}})
    plan = load_plan(spec, [f"data.root={tiny_data}", *TINY])
    out = tmp_path / "out"
    claim = claim_path(out, "patchgan__seed0")
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"host": "node-17", "pid": 4242, "time": time.time()}))
    (outcome,) = run_ablation(plan, out, progress=False)
    assert outcome.action == "claimed" and outcome.error == "claimed by node-17 pid 4242"
    assert not (out / "runs" / "patchgan__seed0").exists() and claim.exists()

    old = time.time() - 3600  # no heartbeat for an hour: that job is gone
    os.utime(claim, (old, old))
    (outcome,) = run_ablation(plan, out, progress=False)
    assert outcome.action == "trained" and not claim.exists()
    assert read_status(out, "patchgan__seed0")["state"] == "done"


def test_a_claim_of_a_dead_local_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = claim_path(tmp_path, "run")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "token": "x"}))
    held = try_claim(tmp_path, "run")
    assert not isinstance(held, dict)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert try_claim(tmp_path, "run")["pid"] == os.getpid()  # ours is live: a second one fails
    held.release()
    assert not path.exists()


def test_a_failed_run_is_reported_and_only_it_is_rerun(
    tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    spec = write_spec(tmp_path)
    out = tmp_path / "out"
    real = job_module.train_run

    def broken(run_dir: Path, variant, *args, **kwargs) -> None:
        if variant.name == "multiscale":
            raise RuntimeError("CUDA out of memory (simulated)\nsecond line")
        real(run_dir, variant, *args, **kwargs)

    monkeypatch.setattr(job_module, "train_run", broken)
    assert main(cli_args(spec, out, tiny_data)) == 2
    assert "1 run(s) failed or stopped (multiscale__seed0" in capsys.readouterr().err
    status = read_status(out, "multiscale__seed0")
    assert status["state"] == "failed"
    assert status["error"] == "RuntimeError: CUDA out of memory (simulated)"
    log = Path(status["log"])
    assert "Traceback" in log.read_text() and "second line" in log.read_text()
    md = (out / "results.md").read_text()
    assert "## Failed runs" in md and "CUDA out of memory (simulated)" in md and str(log) in md
    html = write_html_report(out).read_text()  # the HTML report names it too
    assert "Failed runs" in html and "CUDA out of memory (simulated)" in html and str(log) in html

    monkeypatch.setattr(job_module, "train_run", real)
    plan = load_plan(spec, [f"data.root={tiny_data}", *TINY])
    done = {o.variant: o.action for o in run_ablation(plan, out, progress=False)}
    assert done == {"patchgan": "skipped", "multiscale": "trained"}
    report = write_results(out)
    assert not report.failed and "Failed runs" not in report.markdown.read_text()
    assert {c.variant for c in report.comparisons} == {"multiscale"}
    md = report.markdown.read_text()
    assert "## Against the base variant" in md
    # one seed: a difference, no test, no CI
    assert re.search(
        r"\| l1 \| multiscale \| [+-]0\.\d{4} \| – \| none \| 1 \| – \| needs more seeds \| – \|",
        md,
    )
    assert compare_to_base(out) == report.comparisons


def test_progress_is_read_from_the_ablation_directory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "a__seed0").mkdir(parents=True)
    lines = [{"step": 2, "ms_per_step": 500.0}, {"step": 4, "ms_per_step": 1000.0}]
    (runs / "a__seed0" / "metrics.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines) + '{"step": 5, "ms_'  # being written
    )
    claim_path(tmp_path, "a__seed0").write_text("{}")
    write_status(tmp_path / "new", "b__seed0", state="failed")  # a worker that never started
    assert read_status(tmp_path / "new", "b__seed0") == {"state": "failed"}
    write_status(tmp_path, "b__seed0", state="done", finished=time.time())
    write_status(tmp_path, "c__seed0", state="failed", error="boom", finished=time.time())
    a, b, c, d = (run_progress(tmp_path, f"{n}__seed0", 10) for n in "abcd")
    assert (a.state, a.step, a.eta_s) == ("running", 4, 6.0)  # 6 steps left at 1 s
    assert (b.state, b.step) == ("done", 10) and (c.state, c.error) == ("failed", "boom")
    assert d.state == "queued"
    # a failure recorded before this launch began is being retried: queued
    assert run_progress(tmp_path, "c__seed0", 10, since=time.time() + 1).state == "queued"
    assert progress_table([a, b, c, d]).caption == "1 queued, 1 running, 1 done, 1 failed"
    console = Console(record=True, force_terminal=False, width=200)
    view = ProgressView(tmp_path, ["a__seed0", "c__seed0", "e__seed0"], 10, console)
    write_status(tmp_path, "e__seed0", state="failed", error="boom", finished=time.time() + 1)
    with view:  # c failed before this launch: queued (to be retried), so no line
        pass
    assert console.export_text().splitlines() == [
        "a__seed0: running (step 4/10)",
        "e__seed0: failed (step 0/10): boom",
    ]


# statistics ---------------------------------------------------------------------------------

BASE = {0: 0.412, 1: 0.398, 2: 0.431, 3: 0.405, 4: 0.420}
OTHER = {0: 0.401, 1: 0.379, 2: 0.425, 3: 0.396, 4: 0.402}


def test_shared_seeds_use_the_paired_t_test_like_scipy() -> None:
    c = compare("l1", "patchgan", "multiscale", BASE, OTHER)
    a, b = [OTHER[s] for s in BASE], list(BASE.values())
    diffs = np.subtract(a, b)
    assert c.test == "paired t" and c.n == 5
    assert c.diff == pytest.approx(diffs.mean())
    assert c.p_value == pytest.approx(st.ttest_rel(a, b).pvalue, rel=1e-12)
    assert c.ci_low < c.diff < c.ci_high and c.ci_high < 0  # every seed improved
    assert c.verdict == SIGNIFICANT
    d = diffs.mean() / diffs.std(ddof=1)
    assert c.seeds_needed == seeds_needed(d, paired=True)
    assert compare("l1", "patchgan", "multiscale", BASE, OTHER) == c  # seeded bootstrap


def test_disjoint_seeds_use_welch_like_scipy() -> None:
    other = {s + 10: v for s, v in OTHER.items()}
    c = compare("l1", "patchgan", "multiscale", BASE, other)
    a, b = list(other.values()), list(BASE.values())
    assert c.test == "Welch t"
    assert c.p_value == pytest.approx(st.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-12)
    assert c.p_value > compare("l1", "patchgan", "multiscale", BASE, OTHER).p_value


def test_power_and_the_seeds_needed() -> None:
    assert power_paired(1.0, 10) == pytest.approx(0.8031, abs=1e-4)  # G*Power, one-sample t
    assert seeds_needed(1.0, paired=True) == 10
    assert seeds_needed(-1.0, paired=True) == 10
    assert seeds_needed(0.5, paired=True) == 34
    assert seeds_needed(1.0, paired=False) == 17  # per group, two-sample t
    assert seeds_needed(0.0, paired=True) is None


def test_few_seeds_need_more_seeds_even_when_p_is_small() -> None:
    two = compare("l1", "a", "b", {0: 1.0, 1: 2.0}, {0: 1.5, 1: 2.51})
    assert two.test == "paired t" and two.p_value < 0.05 and two.verdict == NEEDS_MORE
    one = compare("l1", "a", "b", {0: 1.0}, {0: 1.5})
    assert one.test == "none" and one.p_value is None and one.diff == pytest.approx(0.5)
    rows = [
        {"variant": v, "seed": s, "l1": x}
        for v, d in (("a", BASE), ("b", OTHER))
        for s, x in d.items()
    ]
    (only,) = compare_variants(rows, ["a", "b"], ["l1"])
    assert only.base == "a" and only.variant == "b" and only.n == 5


def test_the_verdict_and_the_seeds_for_80_percent_agree() -> None:
    """2 seeds with a large, steady difference: "needs more seeds" sat beside "seeds for 80%:
    2". The estimate is now at least the 3 seeds a ✓ needs; with those seeds and p >= 0.05 the
    verdict is "not significant", not "needs more seeds"."""
    two = compare("l1", "a", "b", {0: 1.0, 1: 2.0}, {0: 2.0, 1: 3.1})
    assert two.n == 2 and two.verdict == NEEDS_MORE and two.seeds_needed == 3
    assert seeds_needed(50.0, paired=True) == 3
    noisy = compare("l1", "a", "b", {0: 1.0, 1: 2.0, 2: 1.5}, {0: 1.2, 1: 1.9, 2: 1.8})
    assert noisy.p_value > 0.05 and noisy.seeds_needed > 3 and noisy.verdict == NEEDS_MORE
    done = dataclasses.replace(noisy, seeds_needed=3)
    assert done.verdict == "not significant"


def test_a_dead_worker_fails_only_the_run_it_was_running(tmp_path: Path) -> None:
    from ganzoo.ablation.job import RunJob, record_death
    from ganzoo.ablation.plan import Variant

    def job(name: str) -> RunJob:
        return RunJob(tmp_path, None, Variant(name, {}, {}), 0)  # type: ignore[arg-type]

    write_status(tmp_path, "running__seed0", state="running", pid=1)
    write_status(tmp_path, "finished__seed0", state="done", pid=2)
    actions = {}
    for name in ("running", "finished", "queued"):
        outcome = record_death(job(name), "worker process died: BrokenProcessPool", tmp_path / "l")
        actions[name] = outcome.action
    assert actions == {"running": "failed", "finished": "skipped", "queued": "failed"}
    assert read_status(tmp_path, "running__seed0")["state"] == "failed"
    assert read_status(tmp_path, "finished__seed0") == {"state": "done", "pid": 2}
    assert read_status(tmp_path, "queued__seed0") is None  # never started: retried next launch


def test_a_script_without_a_main_guard_is_refused_before_workers_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/ablations.md's Python block had no `if __name__ == "__main__":`: every spawned
    worker imported it again and every run failed with BrokenProcessPool."""
    import multiprocessing as mp
    import types

    from ganzoo.launchers.local import LocalLauncher
    from ganzoo.launchers.spawn_guard import check_spawn_safe_main

    script = tmp_path / "ablate_it.py"
    script.write_text("from ganzoo.ablation import run_ablation\nrun_ablation(plan, out)\n")
    main_module = types.ModuleType("__main__")
    main_module.__file__ = str(script)
    main_module.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", main_module)
    with pytest.raises(GanzooError) as info:
        LocalLauncher(jobs=1).launch([], tmp_path, Console(file=open(os.devnull, "w")))
    assert str(info.value).startswith(f"{script}: the local launcher runs each ablation run")
    assert 'if __name__ == "__main__":' in str(info.value) and "\n" not in str(info.value)
    script.write_text("import x\n\nif '__main__' == __name__:\n    x.run_ablation()\n")
    check_spawn_safe_main()  # guarded: fine
    monkeypatch.setattr(mp.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(GanzooError, match="a spawned ablation worker imported"):
        check_spawn_safe_main()
