"""Loggers (TensorBoard, W&B, MLflow), read back from what they wrote; failures isolated;
training diagnostics."""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe

from ganzoo import registry
from ganzoo.loggers.base import Logger, RunInfo
from ganzoo.training.diagnostics import TrainingMonitor
from ganzoo.training.logger_thread import TIMEOUT_ENV
from ganzoo.training.logs import LoggerWarning
from ganzoo.training.trainer import TrainingWarning, train

STEPS = ("train.max_steps=4", "train.log_every=1", "train.sample_every=2")


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def loss_values(run: Path, key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in records(run) if key in r}


# -- TensorBoard -------------------------------------------------------------------------------
def test_tensorboard_events_read_back_and_resume_without_duplicates(
    tiny_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    recipe = tiny_recipe(tiny_data, *STEPS, "train.loggers=[tensorboard]", "train.max_steps=2")
    train(recipe, run_dir=run, progress=False)
    # a crash after step 3 was logged, before its checkpoint: the resume must not repeat it
    train(None, run_dir=run, resume=True, overrides=["train.max_steps=4"], progress=False)
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    scalars = {e.step: e.value for e in events.Scalars("loss/g_l1")}
    assert sorted(scalars) == [1, 2, 3, 4]  # each step once, across the resume
    for step, value in loss_values(run, "loss_g_l1").items():
        assert scalars[step] == pytest.approx(value, rel=1e-6)
    for tag in ("lr/g", "speed/ms_per_step", "speed/images_per_s", "val/l1", "d/acc"):
        assert tag in tags["scalars"], tag
    assert "grad_norm/g" in tags["scalars"] and "d_out/real" in tags["scalars"]
    assert [e.step for e in events.Images("samples")] == [2, 4]
    assert any("recipe" in t for t in tags["tensors"])  # the recipe and environment as text
    hparams = events.PluginTagToContent("hparams")  # the final metrics in the HPARAMS tab
    assert "_hparams_/session_start_info" in hparams and "hparam/val_l1" in tags["scalars"]


# -- Weights & Biases ----------------------------------------------------------------------------
def wandb_log_entries(run_file: Path) -> list[bytes]:
    """The records of a ``.wandb`` file: W&B's LevelDB-style log (a 7-byte header, then 32 KiB
    blocks of [crc32c (4), length (2, little-endian), type (1), data] chunks, a record split
    into FIRST / MIDDLE / LAST chunks across blocks)."""
    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, out, partial = 32768, 7, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind, chunk = data[pos + 6], data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            partial = chunk
        elif kind == 3:
            partial += chunk
        elif kind == 4:
            out.append(partial + chunk)
    return out


def wandb_records(run_file: Path) -> dict[str, list]:
    """Config, history and summary records of an offline W&B run, parsed with wandb's own
    protobuf messages."""
    from wandb.proto import wandb_internal_pb2

    out: dict[str, list] = {"run": [], "history": [], "summary": []}
    for entry in wandb_log_entries(run_file):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(entry)
        kind = record.WhichOneof("record_type")
        if kind in out:
            out[kind].append(getattr(record, kind))
    return out


def items(update) -> dict:  # noqa: ANN001
    """A W&B config or history update as {key: value}."""
    return {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in update}


def test_wandb_offline_run_holds_the_recipe_history_and_resumes_the_same_run(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    recipe = tiny_recipe(tiny_data, *STEPS, "train.loggers=[wandb]", "train.max_steps=2")
    train(recipe, run_dir=run, progress=False)
    run_id = json.loads((run / "loggers.json").read_text())["wandb"]["run_id"]
    train(None, run_dir=run, resume=True, overrides=["train.max_steps=4"], progress=False)
    folders = sorted((run / "wandb").glob("offline-run-*"))
    # wandb names a session's folder offline-run-<time>-<id>, adding -1 when the resumed
    # session starts within the same second as the first
    same_run = re.compile(rf"offline-run-\d{{8}}_\d{{6}}-{re.escape(run_id)}(-\d+)?")
    assert len(folders) == 2 and all(same_run.fullmatch(f.name) for f in folders)
    first = wandb_records(next(folders[0].glob("*.wandb")))
    config = items(first["run"][0].config.update)
    assert config["name"] == "quickstart" and "torch" in config["environment"]
    assert config["optim"]["lr_g"] == 0.0002
    steps = [(h.step.num, items(h.item)) for h in first["history"]]
    logged = {s: v["loss_g_l1"] for s, v in steps if "loss_g_l1" in v}
    expected = loss_values(run, "loss_g_l1")
    assert logged.keys() == {1, 2} and all(
        logged[s] == pytest.approx(expected[s], rel=1e-6) for s in logged
    )
    second = wandb_records(next(folders[1].glob("*.wandb")))
    later = {h.step.num for h in second["history"]}
    assert {3, 4} <= later and not later & {1, 2}


# -- MLflow --------------------------------------------------------------------------------------
def test_mlflow_file_store_is_queried_back_and_resumes_the_same_run(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps it for local use
    uri = (tmp_path / "mlruns").as_uri()
    run = tmp_path / "run"
    loggers = f"train.loggers=[{{name: mlflow, tracking_uri: '{uri}', experiment: tiny}}]"
    recipe = tiny_recipe(tiny_data, *STEPS, loggers, "train.max_steps=2")
    train(recipe, run_dir=run, progress=False)
    run_id = json.loads((run / "loggers.json").read_text())["mlflow"]["run_id"]
    train(None, run_dir=run, resume=True, overrides=["train.max_steps=4"], progress=False)
    client = MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(run_id, "loss_g_l1")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    expected = loss_values(run, "loss_g_l1")
    assert all(m.value == pytest.approx(expected[m.step], rel=1e-6) for m in history)
    info = client.get_run(run_id)
    assert info.data.params["optim.lr_g"] == "0.0002" and "torch" in info.data.tags
    assert info.info.status == "FINISHED" and "final_val_l1" in info.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"recipe.yaml", "samples"} <= artifacts


def test_mlflow_sqlite_store_of_the_docs_works(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/training.md's `tracking_uri: sqlite:///mlflow.db` with ganzoo[mlflow]: mlflow-skinny
    alone failed with UnsupportedModelRegistryStoreURIException and the logger was dropped."""
    pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("alembic")
    import warnings

    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the store and its artifacts land here
    loggers = "train.loggers=[{name: mlflow, tracking_uri: 'sqlite:///mlflow.db'}]"
    with warnings.catch_warnings():
        warnings.simplefilter("error", LoggerWarning)
        train(tiny_recipe(tiny_data, *STEPS, loggers), run_dir=tmp_path / "run", progress=False)
    run_id = json.loads((tmp_path / "run" / "loggers.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
    assert sorted(m.step for m in client.get_metric_history(run_id, "loss_g_l1")) == [1, 2, 3, 4]
    assert client.get_run(run_id).info.status == "FINISHED"


def test_mlflow_database_store_without_sqlalchemy_says_what_to_install(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from ganzoo.loggers import mlflow as mlflow_logger

    monkeypatch.setattr(mlflow_logger, "sqlalchemy_installed", lambda: False)
    monkeypatch.chdir(tmp_path)
    loggers = "train.loggers=[{name: mlflow, tracking_uri: 'sqlite:///mlflow.db'}]"
    with pytest.warns(LoggerWarning) as caught:
        train(tiny_recipe(tiny_data, *STEPS, loggers), run_dir=tmp_path / "run", progress=False)
    (message,) = [str(w.message) for w in caught if w.category is LoggerWarning]
    assert "sqlite store needs SQLAlchemy and Alembic" in message
    assert "pip install 'ganzoo[mlflow]'" in message


def test_mlflow_folder_store_refused_by_mlflow_3_says_what_to_use(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("MLflow 2 keeps folder stores")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = (tmp_path / "mlruns").as_uri()
    loggers = f"train.loggers=[{{name: mlflow, tracking_uri: '{uri}'}}]"
    with pytest.warns(LoggerWarning) as caught:
        train(tiny_recipe(tiny_data, *STEPS, loggers), run_dir=tmp_path / "run", progress=False)
    (message,) = [str(w.message) for w in caught if w.category is LoggerWarning]
    assert "refuses folder stores; use tracking_uri: sqlite:///mlflow.db or MLFLOW_ALLOW" in message


# -- failures are reported once and training goes on ----------------------------------------
def test_a_failing_logger_is_dropped_with_one_warning(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    import socket

    with socket.socket() as probe:  # a tracking server that is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    loggers = f"train.loggers=[{{name: mlflow, tracking_uri: 'http://127.0.0.1:{port}'}}]"
    with pytest.warns(LoggerWarning) as caught:
        _, final = train(
            tiny_recipe(tiny_data, *STEPS, loggers), run_dir=tmp_path / "run", progress=False
        )
    assert final["step"] == 4
    messages = [str(w.message) for w in caught if w.category is LoggerWarning]
    assert len(messages) == 1 and "logger mlflow failed in start" in messages[0]
    assert "training goes on without it" in messages[0] and "\n" not in messages[0]


def test_a_missing_package_says_what_to_install(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if name == "wandb" or name.startswith("wandb."):
            raise ImportError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.warns(LoggerWarning, match=r"pip install 'ganzoo\[wandb\]'"):
        train(
            tiny_recipe(tiny_data, *STEPS, "train.loggers=[wandb]"),
            run_dir=tmp_path / "run",
            progress=False,
        )
    assert records(tmp_path / "run")  # the JSONL log was written regardless


def test_only_rank_zero_logs(tiny_data: Path, tmp_path: Path) -> None:
    from ganzoo.training.logs import RunLogs

    logs = RunLogs(tiny_recipe(tiny_data, "train.loggers=[tensorboard]"), tmp_path, enabled=False)
    assert logs.loggers == {}
    logs.write({"step": 1, "loss_d": 1.0})
    assert not (tmp_path / "metrics.jsonl").exists()


# -- diagnostics ------------------------------------------------------------------------------
def test_diagnostics_are_logged(tiny_data: Path, tmp_path: Path) -> None:
    train(tiny_recipe(tiny_data, *STEPS), run_dir=tmp_path / "run", progress=False)
    logged = [r for r in records(tmp_path / "run") if "loss_d" in r]
    assert all(0 <= r["d_acc"] <= 1 for r in logged)
    assert all(r["grad_norm_g"] > 0 and r["grad_norm_d"] > 0 for r in logged)
    assert all({"d_out_real", "d_out_fake", "images_per_s"} <= r.keys() for r in logged)


def test_the_monitor_warns_when_d_wins_outright_and_when_a_loss_diverges() -> None:
    monitor = TrainingMonitor()
    warned = []
    for step, (acc, gan) in enumerate([(0.6, 1.0), (0.97, 1.2), (0.98, 1.5), (0.99, 2.0)]):
        warned += monitor.observe({"step": step, "d_acc": acc, "loss_g_gan": gan})
    assert len(warned) == 1 and "discriminator is winning outright" in warned[0]
    assert "lsgan" in warned[0] and "spectral_norm" in warned[0]
    # a healthy run: D uncertain, G's loss level
    calm = TrainingMonitor()
    assert not [
        w for s in range(20) for w in calm.observe({"step": s, "d_acc": 0.7, "loss_g_gan": 1.0})
    ]
    diverging = TrainingMonitor()
    out = []
    for step, value in enumerate([1.0, 1.1, 0.9, 1.0, 2.0, 5.0, 20.0]):
        out += diverging.observe({"step": step, "loss_g_l1": value})
    assert len(out) == 1 and "loss_g_l1 is diverging" in out[0] and "lr_g" in out[0]


def test_the_monitor_resumes_as_if_never_stopped() -> None:
    """Its state (bounded: a key's first and last few values) goes into checkpoints: a
    resumed run warns when the uninterrupted one would, and not again for a warning given."""
    values = [1.0, 1.1, 0.9, 1.0, 2.0, 5.0, 20.0, 30.0] + [0.5] * 200
    whole, warned_whole = TrainingMonitor(), []
    for step, value in enumerate(values):
        warned_whole += [(step, w) for w in whole.observe({"step": step, "loss_g_l1": value})]
    for stop in (3, 5, 6, 7, 100):
        before, warned = TrainingMonitor(), []
        for step, value in enumerate(values[:stop]):
            warned += [(step, w) for w in before.observe({"step": step, "loss_g_l1": value})]
        saved = before.state_dict()
        assert all(len(v) <= 4 for v in saved["recent"].values())  # bounded
        after = TrainingMonitor()
        after.load_state_dict(torch.load(_saved(saved), weights_only=True))
        for step, value in enumerate(values[stop:], stop):
            warned += [(step, w) for w in after.observe({"step": step, "loss_g_l1": value})]
        assert warned == warned_whole == [(6, warned_whole[0][1])], stop
    assert TrainingMonitor().observe({"step": 1, "loss_x": None, "d_acc": "?"}) == []  # a plugin's


def _saved(state: dict) -> io.BytesIO:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def test_the_trainer_raises_the_warning(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ganzoo.training.diagnostics as diagnostics

    monkeypatch.setattr(diagnostics, "WIN_ACCURACY", 0.0)  # any accuracy counts as winning
    monkeypatch.setattr(diagnostics, "PATIENCE", 1)
    recipe = tiny_recipe(tiny_data, "train.max_steps=40", "train.log_every=1", "optim.lr_g=1e-6")
    with pytest.warns(TrainingWarning, match="winning outright"):
        train(recipe, run_dir=tmp_path / "run", progress=False)


# -- loggers cannot stall or end training ------------------------------------------------------
RELEASE = threading.Event()  # lets a blocked logger go at the end of the session


@registry.register("logger", "test_loggers_blocking")
class BlockingLogger(Logger):
    """A plugin-like logger whose every record blocks (a server that never answers)."""

    def __init__(self, run_dir: Path) -> None:
        pass

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        RELEASE.wait(120)


@registry.register("logger", "test_loggers_exiting")
class ExitingLogger(Logger):
    """A plugin-like logger that calls sys.exit, in its constructor or on its first record."""

    def __init__(self, run_dir: Path, when: str = "log_scalars") -> None:
        if when == "init":
            sys.exit(3)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        sys.exit(3)


@registry.register("logger", "test_loggers_verbose")
class VerboseLogger(Logger):
    """A logger failing with a message far longer than one line allows."""

    def __init__(self, run_dir: Path) -> None:
        pass

    def start(self, info: RunInfo) -> None:
        raise RuntimeError("the tracking server refused the request " * 12)


def logger_warnings(recipe, run: Path) -> tuple[dict, list[str]]:  # noqa: ANN001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, final = train(recipe, run_dir=run, progress=False)
    return final, [str(w.message) for w in caught if w.category is LoggerWarning]


def test_a_logger_that_never_answers_is_dropped_and_training_goes_on(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    recipe = tiny_recipe(tiny_data, *STEPS, "train.loggers=[test_loggers_blocking]")
    try:
        final, messages = logger_warnings(recipe, tmp_path / "run")
    finally:
        RELEASE.set()
    assert final["step"] == 4 and len(records(tmp_path / "run")) > 4
    assert messages == [
        "logger test_loggers_blocking did not answer within 0.5 s in log_scalars; training "
        "goes on without it"
    ]


@pytest.mark.parametrize("when", ["init", "log_scalars"])
def test_a_logger_calling_sys_exit_is_dropped_with_one_line(
    tiny_data: Path, tmp_path: Path, when: str
) -> None:
    logger = f"train.loggers=[{{name: test_loggers_exiting, when: {when}}}]"
    final, messages = logger_warnings(tiny_recipe(tiny_data, *STEPS, logger), tmp_path / "run")
    assert final["step"] == 4  # every step trained, and checkpointed
    assert (tmp_path / "run" / "checkpoints" / "step_00000004.pt").is_file()
    what = "could not be built" if when == "init" else "failed in log_scalars"
    assert messages == [
        f"logger test_loggers_exiting {what} (SystemExit: 3); training goes on without it"
    ]


def test_logger_failure_messages_are_cut_between_words(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_data, *STEPS, "train.loggers=[test_loggers_verbose]")
    _, (message,) = logger_warnings(recipe, tmp_path / "run")
    reason = message.split("(RuntimeError: ", 1)[1].split(")", 1)[0]
    assert reason.endswith("…") and len(reason) <= 200 and "\n" not in message
    words = set("the tracking server refused the request".split())
    assert set(reason.removesuffix("…").split()) <= words  # no word cut in two


def test_an_mlflow_server_that_never_answers_is_dropped(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with socket.socket() as server:  # accepts (the kernel completes the handshake), never answers
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        uri = f"http://127.0.0.1:{server.getsockname()[1]}"
        logger = f"train.loggers=[{{name: mlflow, tracking_uri: '{uri}'}}]"
        final, messages = logger_warnings(tiny_recipe(tiny_data, *STEPS, logger), tmp_path / "r")
    assert final["step"] == 4
    assert len(messages) == 1 and "logger mlflow did not answer within 1 s" in messages[0]


def test_mlflow_gives_up_on_a_failing_server_after_two_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from ganzoo.loggers.mlflow import HTTP_DEFAULTS, MlflowLogger

    for key in HTTP_DEFAULTS:  # MLflow's own defaults unless we set ours (restored after)
        monkeypatch.setenv(key, "0")
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    hits: list[str] = []

    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        logger = MlflowLogger(tmp_path, tracking_uri=f"http://127.0.0.1:{httpd.server_port}")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # the count, not the wait
        info = RunInfo(tmp_path, "run", {}, "", {})
        with pytest.raises(Exception):  # noqa: B017 - whatever MLflow raises
            logger.start(info)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(hits) == 1 + int(HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])  # not 1 + 7
