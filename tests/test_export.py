"""`ganzoo export`: safetensors round trip, TorchScript = eager, ONNX Runtime = PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_recipe, train_tiny_run
from safetensors import safe_open
from safetensors.torch import load_file

from ganzoo.artifacts.loading import load_generator
from ganzoo.build import build_generator
from ganzoo.cli import main
from ganzoo.errors import GanzooError, SizeError
from ganzoo.evaluation.export import export_generator
from ganzoo.recipe import from_dict
from ganzoo.training.trainer import train


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_data, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def eager(run: Path) -> torch.nn.Module:
    return load_generator(run)[0]


def images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_safetensors_round_trip(run: Path, eager: torch.nn.Module) -> None:
    e = export_generator(run, "safetensors")
    assert e.path == run / "export" / "generator.safetensors" and e.info.ema
    with safe_open(str(e.path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "ganzoo-generator-1" and meta["ema"] == "true" and meta["step"] == "3"
    recipe = from_dict(json.loads(meta["recipe"]))
    fresh = build_generator(recipe).eval()
    fresh.load_state_dict(load_file(str(e.path)))
    loaded, _, info = load_generator(e.path)
    assert info.kind == "safetensors" and info.ema and info.step == 3
    x = images(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), eager(x)) and torch.equal(loaded(x), eager(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_equals_eager(run: Path, eager: torch.nn.Module, tmp_path: Path) -> None:
    e = export_generator(run, "torchscript", out=tmp_path / "g.pt")
    extra = {"recipe.json": ""}
    traced = torch.jit.load(str(e.path), _extra_files=extra)
    assert json.loads(extra["recipe.json"])["generator"]["name"] == "unet"
    with torch.no_grad():
        for shape in ((1, 3, 32, 32), (2, 3, 64, 96)):
            x = images(*shape)
            torch.testing.assert_close(traced(x), eager(x), rtol=0, atol=1e-6)


def test_onnx_runtime_matches_pytorch(run: Path, eager: torch.nn.Module) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    e = export_generator(run, "onnx")
    assert e.path.suffix == ".onnx" and e.dynamic
    model = onnx.load(str(e.path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["ganzoo.recipe"])["data"]["in_channels"] == 3
    session = ort.InferenceSession(str(e.path), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 32, 32), (3, 3, 64, 96)):  # dynamic batch, height and width
        x = images(*shape)
        (y,) = session.run(None, {"input": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(y), eager(x), rtol=0, atol=1e-3)


def test_export_errors(run: Path, tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="use safetensors, torchscript, onnx"):
        export_generator(run, "tflite")
    with pytest.raises(SizeError, match="multiple of 32") as info:
        export_generator(run, "torchscript", size="36x44")
    assert "\n" not in str(info.value)


def test_export_of_a_raw_checkpoint_without_ema(tiny_data: Path, tmp_path: Path) -> None:
    train(tiny_recipe(tiny_data, "train.max_steps=1"), run_dir=tmp_path / "r", progress=False)
    ckpt = tmp_path / "r" / "checkpoints" / "step_00000001.pt"
    e = export_generator(ckpt, "safetensors", size=64)
    assert e.path == tmp_path / "r" / "export" / "generator.safetensors"
    assert not e.info.ema and not load_generator(e.path)[2].ema


def test_cli_export(run: Path, tmp_path: Path, capsys) -> None:
    for fmt, name in (("safetensors", "g.safetensors"), ("torchscript", "g.ts")):
        code = main(["export", str(run), "--format", fmt, "--out", str(tmp_path / name)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert f"({fmt}, " in out and "MiB" in out and "EMA weights" in out
        assert (tmp_path / name).is_file()
    code = main(["export", str(run), "--format", "keras"])
    _, err = capsys.readouterr()
    assert code == 2 and "unknown" in err and len(err.strip().splitlines()) == 1
    code = main(["export", str(tmp_path / "nope")])
    _, err = capsys.readouterr()
    assert code == 2 and "no such run directory" in err and len(err.strip().splitlines()) == 1


def test_exports_share_the_usual_permissions(run: Path, tmp_path: Path) -> None:
    """safetensors' own writer made generator.safetensors 0600 where other exports are 0644."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        s = export_generator(run, "safetensors", out=tmp_path / "g.safetensors")
        t = export_generator(run, "torchscript", out=tmp_path / "g.torchscript.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(s.path.stat().st_mode) == stat.S_IMODE(t.path.stat().st_mode) == 0o644


def test_a_greyscale_array_into_an_rgb_model(run: Path) -> None:
    """A numpy H x W array failed where a PIL greyscale image of it worked."""
    import numpy as np
    from PIL import Image

    import ganzoo

    model = ganzoo.load(run, device="cpu")
    grey = np.random.default_rng(0).integers(0, 256, size=(32, 32)).astype(np.uint8)
    out = model(grey)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, np.asarray(model(Image.fromarray(grey))))
