"""Trainer events (ganzoo.training.callbacks): a plugin callback hears every event, its state
rides in the checkpoint and survives a resume exactly; the built-ins keep the cadence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_recipe

from ganzoo import records, registry
from ganzoo.artifacts.checkpoint import latest_checkpoint, load_checkpoint
from ganzoo.errors import GanzooError
from ganzoo.recipe import DEFAULT_CALLBACKS
from ganzoo.training.callbacks import EVENTS, Callback
from ganzoo.training.trainer import Trainer, train

BUILTINS = ",".join(DEFAULT_CALLBACKS)


class Recorder(Callback):
    """Counts events and sums G's L1 loss, in float64, so a lost or repeated step shows."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.events: list[str] = []
        self.steps = 0
        self.total = torch.zeros((), dtype=torch.float64)
        self.loaded: dict[str, Any] | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        self.events.append("on_fit_start")

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        self.events.append("on_step_end")
        self.steps += 1
        self.total += losses["g_l1"].double()

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.events.append("on_log")
        assert records.loss_key("g_l1") in record

    def on_validation_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self.events.append("on_validation_end")
        assert records.VAL_L1 in record

    def on_epoch_end(self, trainer: Trainer) -> None:
        self.events.append("on_epoch_end")

    def on_checkpoint(self, trainer: Trainer, path: Path | None) -> None:
        self.events.append("on_checkpoint")
        assert path is not None and path.is_file()

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        self.events.append("on_exception")

    def on_fit_end(self, trainer: Trainer, final: dict[str, Any]) -> None:
        self.events.append("on_fit_end")

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "total": self.total.clone(), "tag": self.tag}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loaded = state
        self.steps, self.total = state["steps"], state["total"].clone()


@pytest.fixture
def recorder() -> Any:
    """``recorder`` registered as a callback for this test only."""
    registry.register("callback", "recorder")(Recorder)
    yield Recorder
    registry.default_registry._entries["callback"].pop("recorder", None)


def _recorder(trainer: Trainer) -> Recorder:
    (found,) = [c for c in trainer.callbacks if isinstance(c, Recorder)]
    return found


def _records(run: Path) -> list[dict[str, Any]]:
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for key in records.SPEED:  # wall time
            record.pop(key, None)
        out.append(record)
    return out


def test_a_plugin_callback_hears_every_event(
    tiny_data: Path, tmp_path: Path, recorder: Any
) -> None:
    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=8",  # 6 steps per epoch: one epoch end
        "train.sample_every=4",
        "train.checkpoint_every=4",
        f"train.callbacks=[{BUILTINS},{{name: recorder, tag: x}}]",
    )
    trainer, _ = train(recipe, run_dir=tmp_path / "run", progress=False)
    rec = _recorder(trainer)
    assert set(rec.events) == set(EVENTS) - {"on_exception"}
    assert rec.events[0] == "on_fit_start" and rec.events[-1] == "on_fit_end"
    assert rec.events.count("on_step_end") == 8 and rec.events.count("on_log") == 4
    assert rec.events.count("on_validation_end") == 2  # steps 4 and 8
    assert rec.events.count("on_checkpoint") == 2  # step 4 and the end
    assert rec.events.count("on_epoch_end") == 1
    saved = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert saved["callbacks"]["recorder"]["steps"] == 8 and saved["callbacks"]["recorder"]["tag"]


def test_a_callback_hears_the_exception(
    tiny_data: Path, tmp_path: Path, recorder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = tiny_recipe(tiny_data, "train.max_steps=3", "train.callbacks=[recorder]")
    with Trainer(recipe, tmp_path / "run", progress=False) as trainer:
        monkeypatch.setattr(trainer, "update", lambda batch, measure=False: {})
        with pytest.raises(RuntimeError):  # no losses to stack: the NaN check fails
            trainer.fit()
    assert _recorder(trainer).events == ["on_fit_start", "on_exception"]


def test_callback_state_survives_a_resume_exactly(
    tiny_data: Path, tmp_path: Path, recorder: Any
) -> None:
    callbacks = f"train.callbacks=[{BUILTINS},recorder]"
    every = ("train.log_every=5", "train.checkpoint_every=5", "train.sample_every=5")
    common = (*every, "optim.ema_decay=0.9")
    whole, _ = train(
        tiny_recipe(tiny_data, "train.max_steps=10", callbacks, *common),
        run_dir=tmp_path / "whole",
        progress=False,
    )
    train(
        tiny_recipe(tiny_data, "train.max_steps=5", callbacks, *common),
        run_dir=tmp_path / "split",
        progress=False,
    )
    resumed, _ = train(
        run_dir=tmp_path / "split", resume=True, overrides=["train.max_steps=10"], progress=False
    )
    a, b = _recorder(whole), _recorder(resumed)
    assert b.loaded is not None and b.loaded["steps"] == 5
    assert b.steps == a.steps == 10
    assert torch.equal(a.total, b.total)  # bit for bit
    assert _records(tmp_path / "whole") == _records(tmp_path / "split")


def test_checkpoints_without_callbacks_resume(
    tiny_data: Path, tmp_path: Path, recorder: Any
) -> None:
    """A checkpoint without ``callbacks`` (every checkpoint before them) resumes, also with a
    callback added on resume, which then starts afresh."""
    recipe = tiny_recipe(tiny_data, "train.max_steps=3")
    assert "callbacks" not in recipe.to_dict()["train"]  # recipe.yaml as before
    train(recipe, run_dir=tmp_path / "run", progress=False)
    path = latest_checkpoint(tmp_path / "run" / "checkpoints")
    ckpt = load_checkpoint(path)
    assert set(ckpt["callbacks"]) == {"monitor"}  # the only built-in with a state
    del ckpt["callbacks"]
    torch.save(ckpt, path)
    resumed, final = train(
        run_dir=tmp_path / "run",
        resume=True,
        overrides=["train.max_steps=5", f"train.callbacks=[{BUILTINS},recorder]"],
        progress=False,
    )
    assert final["step"] == 5
    rec = _recorder(resumed)
    assert rec.loaded is None and rec.steps == 2


def test_the_builtins_can_be_dropped_or_retimed(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=6",
        "train.callbacks=[{name: losses, every: 3}]",  # no validation, no periodic checkpoints
        "train.checkpoint_every=2",
    )
    train(recipe, run_dir=tmp_path / "run", progress=False)
    steps = [r["step"] for r in _records(tmp_path / "run")]
    assert steps == [3, 6]
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt")] == ["step_00000006.pt"]


def test_log_every_no_longer_decides_nan_checks_and_grad_norms(
    tiny_data: Path, tmp_path: Path
) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=4", "train.log_every=2", "train.grad_norm_every=4"
    )
    train(recipe, run_dir=tmp_path / "run", progress=False)
    logged = [r for r in _records(tmp_path / "run") if records.LR_G in r]
    # grad norms measured on step 4 only: the record of steps 1-2 has none
    assert "grad_norm_g" not in logged[0] and "grad_norm_g" in logged[1]


def test_an_unknown_callback_is_refused_in_one_line(tiny_data: Path) -> None:
    with pytest.raises(GanzooError, match="callback"):
        tiny_recipe(tiny_data, "train.callbacks=[losses, checkpoints]")


@pytest.mark.parametrize(("check", "step"), [(None, 1), (3, 3)])
def test_the_nan_check_has_its_own_cadence(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: int | None, step: int
) -> None:
    """On CPU the losses are checked every step unless ``train.check_every`` says otherwise
    (on GPUs it defaults to ``train.log_every``, not to be confused with it any more)."""
    extra = [f"train.check_every={check}"] if check else []
    recipe = tiny_recipe(tiny_data, "train.max_steps=6", "train.log_every=5", *extra)
    nan = {"g_l1": torch.tensor(float("nan"))}
    with Trainer(recipe, tmp_path / "run", progress=False) as trainer:
        monkeypatch.setattr(trainer, "update", lambda batch, measure=False: nan)
        with pytest.raises(GanzooError, match=f"g_l1 became NaN/inf at step {step};"):
            trainer.fit()


def test_a_cadence_below_one_is_refused_in_one_line(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_data, "train.callbacks=[{name: validation, every: 0}]")
    with pytest.raises(GanzooError, match="validation: every 0 must be 1 or more"):
        Trainer(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_default_callbacks_validate_without_importing_torch() -> None:
    """A recipe's ``train.callbacks`` default is checked by a registry lookup; it costs no
    torch import (``ganzoo list callback`` stays quick)."""
    import subprocess
    import sys

    code = (
        "import sys; from ganzoo.recipe import TrainSection; TrainSection(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
