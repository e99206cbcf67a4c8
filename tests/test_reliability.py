"""Nothing lost, nothing hung, no traceback: the failure classes of a hostile probe of the CLI.

Each test names the class it guards (see docs/reliability.md).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_recipe
from PIL import Image

from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from ganzoo.cli import main
from ganzoo.errors import DataError, GanzooError, RecipeError, TrainingError
from ganzoo.recipe import load_recipe
from ganzoo.run_dir import RunDir
from ganzoo.training.trainer import Trainer, train


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# -- 1. a checkpoint is finite in everything it stores ---------------------------------------
def _poison_after(trainer: Trainer, step: int, poison) -> None:  # noqa: ANN001
    real = trainer.update

    def update(batch, **options):  # noqa: ANN001, ANN003, ANN202
        out = real(batch, **options)
        if trainer.state.step + 1 >= step:  # the step being taken now
            poison(trainer)
        return out

    trainer.update = update


def _assert_every_checkpoint_finite(run_dir: Path) -> None:
    from ganzoo.safe_io import nonfinite_entries

    ckpts = list_checkpoints(run_dir / "checkpoints")
    assert ckpts
    for path in ckpts:
        assert nonfinite_entries(load_checkpoint(path)) == [], path


@pytest.mark.parametrize(
    "where",
    ["batchnorm running variance", "generator weight"],
)
def test_a_nonfinite_state_is_never_checkpointed(
    tiny_data: Path, tmp_path: Path, where: str
) -> None:
    # the losses of the step stay finite (they are computed before the update): only the state
    # being saved shows the damage, as with a huge learning rate
    recipe = tiny_recipe(tiny_data, "train.max_steps=10", "train.checkpoint_every=2")
    trainer = Trainer(recipe, tmp_path / "run", progress=False)

    def poison(t: Trainer) -> None:
        with torch.no_grad():
            for name, buf in t.g_module.named_buffers():
                if where.startswith("batchnorm") and name.endswith("running_var"):
                    buf.fill_(float("inf"))
                    return
            if not where.startswith("batchnorm"):
                next(t.g_module.parameters()).fill_(float("nan"))

    _poison_after(trainer, 4, poison)
    with pytest.raises(TrainingError) as info:
        trainer.fit()
    message = str(info.value)
    assert "\n" not in message and "step_00000002.pt" in message
    assert "NaN/inf" in message
    trainer.close()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == [
        "step_00000002.pt"
    ]
    _assert_every_checkpoint_finite(tmp_path / "run")


def test_nonfinite_entries_checks_every_tensor_once_per_device() -> None:
    from ganzoo.safe_io import nonfinite_entries

    state = {"a": torch.ones(3), "b": [torch.zeros(2), {"c": torch.tensor([1.0, float("inf")])}]}
    state["n"] = torch.tensor([1, 2])  # integers are never non-finite
    assert nonfinite_entries(state) == ["b.1.c"]
    assert nonfinite_entries({"x": torch.ones(2)}) == []


# -- 2. run directories are protected --------------------------------------------------------
def test_a_new_run_refuses_a_directory_holding_a_run(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    before = sorted(p.name for p in run.rglob("*"))
    with pytest.raises(TrainingError) as info:
        train(tiny_recipe(tiny_data, "train.max_steps=3"), run_dir=run, progress=False)
    message = str(info.value)
    assert "already holds a run" in message and "--resume" in message and "--overwrite" in message
    assert sorted(p.name for p in run.rglob("*")) == before  # nothing touched

    _, final = train(
        tiny_recipe(tiny_data, "train.max_steps=3"), run_dir=run, overwrite=True, progress=False
    )
    assert final["step"] == 3
    (aside,) = tmp_path.glob("run.replaced-*")
    assert load_checkpoint(list_checkpoints(aside / "checkpoints")[-1])["step"] == 2
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["step"] == 3


def test_a_second_training_into_a_live_run_is_refused(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != ".lock"}
    live = RunDir(run)
    live.acquire()  # another training holds the directory
    try:
        code, _, err = run_cli(
            capsys,
            "train",
            ROOT / "recipes" / "quickstart.yaml",
            "--out",
            run,
            "--overwrite",
            "--set",
            f"data.root={tiny_data}",
        )
        assert code == 2 and "in use by another training (pid " in one_line(err)
        with pytest.raises(TrainingError, match="in use by another training"):
            train(None, run_dir=run, resume=True, progress=False)
    finally:
        live.release()
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != ".lock"}
    assert after == before  # the refused runs changed nothing
    assert not list(tmp_path.glob("run.replaced-*"))


def test_a_crashed_process_leaves_no_lock_behind(tmp_path: Path) -> None:
    run = tmp_path / "run"
    code = (
        "import os, sys; from ganzoo.run_dir import RunDir; "
        f"RunDir({str(run)!r}).acquire(); print('locked', flush=True); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and "locked" in proc.stdout
    with RunDir(run).lock() as locked:  # the kernel dropped the dead process's lock
        assert locked.locked


def test_stale_temporary_files_are_removed_when_a_run_is_opened(
    tiny_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    torn = run / "checkpoints" / ".step_00000009.pt.tmp-99999"
    torn.write_bytes(b"x" * 1000)
    _, final = train(None, run_dir=run, resume=True, overrides=["train.max_steps=3"])
    assert final["step"] == 3 and not torn.exists()


# -- 3. what a resume may change --------------------------------------------------------------
def test_a_resume_refuses_architecture_changes_before_building(
    tiny_data: Path, tmp_path: Path, monkeypatch
) -> None:
    run = tmp_path / "run"
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    import ganzoo.training.trainer as trainer_module

    def never(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("nothing may be built for a refused resume")

    monkeypatch.setattr(trainer_module, "TrainState", never)
    for override, reason in [
        ("generator.ngf=16", "architecture is fixed by its weights"),
        ("discriminator.n_layers=3", "architecture is fixed by its weights"),
        ("data.crop_size=64", "built for this size"),
        ("seed=3", "data order"),
    ]:
        with pytest.raises(RecipeError) as info:
            train(None, run_dir=run, resume=True, overrides=[override])
        message = str(info.value)
        key = override.split("=")[0]
        assert message.startswith(f"--set {key}: a resume cannot change it") and reason in message
        assert "\n" not in message


def test_a_resume_takes_new_learning_rates_and_a_new_batch_size(
    tiny_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # 12 pairs, batch 2: stop after 2 steps, 4 samples into epoch 0
    train(tiny_recipe(tiny_data, "train.max_steps=2"), run_dir=run, progress=False)
    assert load_checkpoint(list_checkpoints(run / "checkpoints")[-1])["samples_in_epoch"] == 4
    trainer, final = train(
        None,
        run_dir=run,
        resume=True,
        overrides=["data.batch_size=4", "optim.lr_g=0.001", "train.max_steps=4"],
        progress=False,
    )
    # the other 8 samples of epoch 0 in two batches of 4: epoch 0 ends exactly at step 4
    assert final["step"] == 4 and trainer.epoch == 1 and trainer.state.samples_in_epoch == 0
    assert trainer.state.opt_g.param_groups[0]["lr"] == 0.001
    assert "batch_size: 4" in (run / "recipe.yaml").read_text()  # stored for the next resume


def test_resume_drops_records_the_resume_makes_again(tiny_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=4", "train.log_every=1", "train.checkpoint_every=2"
    )
    train(recipe, run_dir=run, progress=False)
    # a crash after step 4's records were written, before its checkpoint was
    (run / "checkpoints" / "step_00000004.pt").unlink()
    train(None, run_dir=run, resume=True, progress=False)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    kinds = [(r["step"], "val_l1" in r) for r in records]
    assert len(kinds) == len(set(kinds)), kinds  # no step logged twice
    assert [s for s, val in kinds if not val] == [1, 2, 3, 4]


# -- 4/5. bounded inputs ------------------------------------------------------------------------
def test_a_yaml_alias_bomb_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    path = tmp_path / "bomb.yaml"
    path.write_text(text + "name: *i\n")
    t0 = time.perf_counter()
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert time.perf_counter() - t0 < 0.5
    message = str(info.value)
    assert "expands to more than 100,000 values" in message and len(message) < 300


def test_errors_never_echo_an_unbounded_value(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    with pytest.raises(RecipeError) as info:
        load_recipe(path, ["generator.ngf=" + "9" * 5000])
    assert len(str(info.value)) < 400


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    code, _, err = run_cli(capsys, "check", path)
    assert code == 2 and "not UTF-8 text (byte 0xe9 at offset 9)" in one_line(err)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("optim.betas=[0.5, 1.5]", "optim.betas.1: must be less than 1"),
        ("optim.betas=[-0.1, 0.9]", "optim.betas.0: must be greater than or equal to 0"),
        ("seed=18446744073709551616", "seed: must be less than 9223372036854775808"),
        ("seed=-1", "seed: must be greater than or equal to 0"),
        ("generator.ngf=0", "generator.ngf: must be greater than or equal to 1"),
        ("generator.ngf=1000000", "generator.ngf: must be less than or equal to 4096"),
        ("discriminator.n_layers=1000", "must be less than or equal to 64"),
        ("data.crop_size=100000", "data.crop_size"),
        ("data.batch_size=0", "data.batch_size: must be greater than or equal to 1"),
        ("optim.lr_g=.nan", "optim.lr_g"),
        ("name=../../x", "name: expected letters, digits and . _ + - only"),
    ],
)
def test_check_is_a_promise(capsys, override: str, expected: str) -> None:
    code, _, err = run_cli(
        capsys, "check", ROOT / "recipes" / "pix2pix_unet256.yaml", "--set", override
    )
    assert code == 2 and expected in one_line(err)


def test_a_network_too_large_to_build_is_refused_before_allocation(tmp_path: Path) -> None:
    from ganzoo.build import build_generator

    recipe = load_recipe(
        ROOT / "recipes" / "pix2pix_unet256.yaml",
        ["generator={name: resnet_9blocks, ngf: 4096}"],
    )
    t0 = time.perf_counter()
    with pytest.raises(GanzooError, match="parameters, more than the 2,147,483,648"):
        build_generator(recipe)
    assert time.perf_counter() - t0 < 5


def test_a_safetensors_file_asking_for_a_huge_network_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from ganzoo.artifacts.loading import load_generator
    from ganzoo.artifacts.schema import SAFETENSORS_FORMAT

    recipe = load_recipe(ROOT / "recipes" / "pix2pix_unet256.yaml").to_dict()
    recipe["generator"] = {"name": "resnet_9blocks", "ngf": 4096}
    path = tmp_path / "g.safetensors"
    save_file(
        {"w": torch.zeros(1)},
        str(path),
        metadata={"format": SAFETENSORS_FORMAT, "recipe": json.dumps(recipe)},
    )
    with pytest.raises(GanzooError) as info:
        load_generator(path)
    assert "more than the 2,147,483,648" in str(info.value) and "\n" not in str(info.value)


def test_a_huge_size_on_the_command_line_is_refused(capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "export", tmp_path / "nothing", "--size", "100000x100000")
    assert code == 2
    from ganzoo.evaluation.inference import parse_size

    with pytest.raises(GanzooError, match="between 1 and 16384"):
        parse_size("100000x100000")
    with pytest.raises(GanzooError, match="expected N or HxW"):
        parse_size("9" * 5000)


# -- 6. large inputs are batched by pixels ----------------------------------------------------
def test_translate_batches_by_a_pixel_budget() -> None:
    from ganzoo.evaluation.inference import PIXEL_BUDGET, same_size_batches

    small = [(i, torch.zeros(3, 64, 64)) for i in range(20)]
    assert [len(b) for b in same_size_batches(small, 8)] == [8, 8, 4]
    large = [(i, torch.zeros(3, 3000, 4000)) for i in range(3)]
    assert 3000 * 4000 > PIXEL_BUDGET
    assert [len(b) for b in same_size_batches(large, 8)] == [1, 1, 1]
    medium = [(i, torch.zeros(3, 1024, 1024)) for i in range(5)]
    assert [len(b) for b in same_size_batches(medium, 8)] == [2, 2, 1]


# -- 7. a full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):  # noqa: ANN201
    """A 2 MiB tmpfs where the test may mount one (root on Linux), else None."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if proc.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_during_a_checkpoint_write_loses_nothing(
    small_disk: Path | None, tmp_path: Path, monkeypatch
) -> None:
    folder = small_disk or tmp_path / "ckpt"
    small = {"generator": {"w": torch.zeros(1000)}}
    first = save_checkpoint(small, folder, 1, keep=3)
    big = {"generator": {"w": torch.zeros(1_000_000)}}  # 4 MB: more than the disk holds
    if small_disk is None:  # no tmpfs here: a writer that fills the disk half-way
        real_save = torch.save

        def full(obj, f, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
            f.write(b"x" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(torch, "save", full)
    with pytest.raises(TrainingError) as info:
        save_checkpoint(big, folder, 2, keep=3)
    if small_disk is None:
        monkeypatch.setattr(torch, "save", real_save)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message
    assert f"{first} is intact" in message and "--resume" in message
    assert sorted(p.name for p in folder.iterdir()) == ["step_00000001.pt"]  # no torn temp
    assert torch.equal(load_checkpoint(first)["generator"]["w"], small["generator"]["w"])


def test_a_full_disk_while_training_is_one_line(tiny_data: Path, tmp_path: Path, monkeypatch):
    import ganzoo.training.logs as logs

    def full(self, record):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(logs.MetricsLog, "write", full)
    with pytest.raises(TrainingError) as info:
        train(tiny_recipe(tiny_data, "train.max_steps=3"), run_dir=tmp_path / "run", progress=False)
    assert "No space left on device" in str(info.value) and "\n" not in str(info.value)


# -- 8. interrupts exit non-zero --------------------------------------------------------------
def _slow_fetch(file_server, tmp_path: Path) -> subprocess.Popen:  # noqa: ANN001
    file_server.behaviour["/facades.tar.gz"] = "trickle"
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganzoo",
            "data",
            "fetch",
            "facades",
            "--to",
            str(tmp_path / "datasets"),
            "--from",
            file_server.url("/facades.tar.gz"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "no_proxy": "*", "NO_PROXY": "*"},
    )


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_an_interrupted_command_exits_non_zero(
    file_server, tmp_path: Path, sig: int, code: int, word: str
) -> None:
    proc = _slow_fetch(file_server, tmp_path)
    deadline = time.time() + 60
    while not file_server.requests and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert word in err and "Traceback" not in err
    leftovers = [p.name for p in (tmp_path / "datasets").iterdir()]
    assert all(name.endswith(".part") for name in leftovers)  # no staging folder


# -- 10. remaining messages ---------------------------------------------------------------------
def test_a_refused_weights_only_load_never_suggests_unpickling(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, ("true",))

    torch.save({"generator": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(TrainingError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    message = str(info.value)
    assert "refused" in message and "weights_only=False" not in message and "\n" not in message
    assert "trusted source" not in message


def test_translate_advice_is_about_its_input(tmp_path: Path, tiny_data: Path, capsys) -> None:
    from conftest import train_tiny_run

    run = train_tiny_run(tiny_data, tmp_path)
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"not a png")
    code, _, err = run_cli(capsys, "translate", run, "--input", bad, "--output", tmp_path / "o")
    line = one_line(err)
    assert code == 2 and "cannot read image" in line and "skip_corrupt" not in line
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(
        capsys, "translate", run, "--input", tiny_data / "val", "--output", tmp_path / "file"
    )
    assert code == 2 and "is a file" in one_line(err)
    code, _, err = run_cli(
        capsys,
        "translate",
        run,
        "--input",
        tiny_data / "val",
        "--output",
        tmp_path / "o2",
        "--batch-size",
        "0",
    )
    assert code == 2 and "--batch-size 0: must be at least 1" in one_line(err)
    code, _, err = run_cli(capsys, "export", run, "--out", tmp_path)
    assert code == 2 and "is a folder; give the file to write" in one_line(err)


def test_a_plugin_calling_sys_exit_is_isolated(tmp_path: Path, monkeypatch) -> None:
    import importlib.metadata

    from ganzoo import registry

    (tmp_path / "quitting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint("quitter", "quitting_plugin:G", "ganzoo.generators")
    entry = registry.Entry("generator", "quitter", "distribution quitter 1.0", entry_point=ep)
    with pytest.warns(registry.PluginWarning, match="SystemExit"):
        with pytest.raises(GanzooError, match="failed to import"):
            entry.load()


# -- 11. 16-bit images keep their depth, never saturated ---------------------------------------
def test_a_16_bit_png_keeps_its_depth(tmp_path: Path) -> None:
    from ganzoo.data.formats import read_image, read_size

    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(path)
    assert read_size(path) == (8, 8)
    array = read_image(path, 1)
    assert array.dtype == np.uint16 and array.shape == (1, 8, 8) and (array == 40000).all()


def test_a_value_outside_the_declared_range_is_one_line(tmp_path: Path) -> None:
    from ganzoo.data.ranges import SideRange

    array = np.full((1, 4, 4), 5000, np.uint16)
    with pytest.raises(DataError) as info:
        SideRange("B", (0, 4095)).check(array, "x.png")
    assert str(info.value).startswith("x.png: value 5000") and "\n" not in str(info.value)
