"""Shared fixtures: a tiny synthetic paired dataset and recipes sized for a 2-core CPU."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from http_server import FileServer
from PIL import Image

from ganzoo.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _gradio_uploads_in_pytest_temp(tmp_path_factory) -> None:
    """The demo tests' Gradio upload cache in pytest's temp folder, not /tmp/gradio."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))


def make_pair(rng: np.random.Generator, side: int) -> Image.Image:
    """An A|B pair where B is a fixed colour mapping of A's blocky label map."""
    labels = rng.integers(0, 4, size=(side // 8, side // 8))
    labels = np.kron(labels, np.ones((8, 8), dtype=np.int64))
    palette_a = np.array([[0, 0, 255], [255, 0, 0], [0, 255, 0], [255, 255, 0]], np.uint8)
    palette_b = np.array([[200, 200, 200], [90, 60, 40], [30, 30, 30], [240, 230, 200]], np.uint8)
    a, b = palette_a[labels], palette_b[labels]
    return Image.fromarray(np.concatenate([a, b], axis=1))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """ROOT/{train,val}/*.png: 12 train and 4 val 32x32 A|B pairs (B = colour map of A)."""
    root = tmp_path_factory.mktemp("tiny_data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        (root / split).mkdir()
        for i in range(n):
            make_pair(rng, 32).save(root / split / f"{i}.png")
    return root


def tiny_recipe(root: Path, *overrides: str) -> Recipe:
    """The quickstart recipe shrunk to 32x32, ngf/ndf 8, no workers, fp32."""
    return load_recipe(
        ROOT / "recipes" / "quickstart.yaml",
        [
            f"data.root={root}",
            "data.direction=AtoB",
            "data.load_size=36",
            "data.crop_size=32",
            "data.batch_size=2",
            "data.num_workers=0",
            "generator={name: unet, num_downs: 5, ngf: 8, norm: batch}",
            "discriminator={name: patchgan, n_layers: 2, ndf: 8, norm: batch}",
            "train.precision=fp32",
            "train.log_every=2",
            "train.sample_every=1000",
            "train.checkpoint_every=1000",
            "train.val_batches=2",
            *overrides,
        ],
    )


def train_tiny_run(root: Path, folder: Path) -> Path:
    """A 3-step tiny run in ``folder/run`` (U-Net with BatchNorm, EMA kept), for the tests of
    what uses a trained model."""
    from ganzoo.training.trainer import train

    run_dir = folder / "run"
    recipe = tiny_recipe(root, "train.max_steps=3", "optim.ema_decay=0.9")
    train(recipe, run_dir=run_dir, progress=False)
    return run_dir


def val_translations(run_dir: Path):  # noqa: ANN201
    """``(A, B, G(A))`` over the whole val split of a run, its G in the mode it was saved in
    (what an evaluation test recomputes by hand)."""
    import torch

    from ganzoo.artifacts.loading import load_generator
    from ganzoo.data import build_dataset

    g, recipe, _ = load_generator(run_dir)
    ds = build_dataset(recipe.data, "val", train=False)
    a = torch.stack([ds[i]["A"] for i in range(len(ds))])
    b = torch.stack([ds[i]["B"] for i in range(len(ds))])
    with torch.no_grad():
        return a, b, g(a)


def train_whole_and_resumed(root: Path, folder: Path, *overrides: str, steps: int = 6):  # noqa: ANN201
    """``(whole, resumed)`` trainers of a tiny recipe: ``steps`` steps in one run
    (``folder/whole``), and ``steps // 2`` then ``--resume`` to ``steps`` (``folder/split``)."""
    from ganzoo.training.trainer import train

    half = steps // 2
    common = (*overrides, f"train.checkpoint_every={half}")
    whole, _ = train(
        tiny_recipe(root, f"train.max_steps={steps}", *common),
        run_dir=folder / "whole",
        progress=False,
    )
    train(
        tiny_recipe(root, f"train.max_steps={half}", *common),
        run_dir=folder / "split",
        progress=False,
    )
    resumed, _ = train(
        run_dir=folder / "split",
        resume=True,
        overrides=[f"train.max_steps={steps}"],
        progress=False,
    )
    return whole, resumed


@pytest.fixture
def file_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """A real HTTP server on 127.0.0.1 (see tests/http_server.py); proxies switched off."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    httpd = FileServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield httpd
    finally:
        httpd.stopping = True
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """The stand-in Hugging Face Hub (tests/hub_server.py), HF_ENDPOINT pointed at it."""
    from hub_server import HubServer

    server = HubServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "ganzoo_home"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    import huggingface_hub.constants

    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub")
    )
    yield server
    server.stopping = True
    server.shutdown()
    server.server_close()


def tiny_model(tiny_data: Path, folder: Path, *overrides: str) -> Path:
    """An untrained 32x32 tiny generator saved as ``folder/model.safetensors`` (fast; drawn
    with init gain 0.1, not 0.02, so that its 8-bit output visibly depends on its input)."""
    import torch

    from ganzoo.artifacts.safetensors import save_safetensors
    from ganzoo.artifacts.schema import GeneratorInfo
    from ganzoo.build import build_generator

    recipe = tiny_recipe(tiny_data, "generator.init_gain=0.1", *overrides)
    torch.manual_seed(0)
    net = build_generator(recipe).eval()
    folder.mkdir(parents=True, exist_ok=True)
    info = GeneratorInfo(path=folder, kind="safetensors", step=0, ema=False)
    return save_safetensors(net, recipe, info, folder / "model.safetensors")


SKETCH = ("data.in_channels=1",)
LABELS = ("data.labels={num_classes: 4}",)


@pytest.fixture(scope="session")
def demo_models(tiny_data: Path, tmp_path_factory) -> dict[str, Path]:
    """Untrained 32x32 models of the three input kinds of `ganzoo demo`, as safetensors."""
    root = tmp_path_factory.mktemp("demo_models")
    return {
        "sketch": tiny_model(tiny_data, root / "sketch", *SKETCH),
        "labels": tiny_model(tiny_data, root / "labels", *LABELS),
        "image": tiny_model(tiny_data, root / "image"),
    }
