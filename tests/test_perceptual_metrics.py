"""LPIPS (AlexNet, VGG16) and DISTS: equal to the authors' packages on fixed images and weights,
in ``ganzoo eval`` and validation where their weights are cached, and one note line each when
they are not. Backbone weights are stand-ins (random, torchvision's keys and shapes) written
into a temporary TORCH_HOME: nothing is ever downloaded."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
from conftest import tiny_recipe, train_tiny_run, val_translations

from ganzoo.cli import main
from ganzoo.evaluation.evaluate import evaluate_run
from ganzoo.scoring import perceptual
from ganzoo.scoring.metric_set import build_metric_set

ARCHS = {"alexnet": torchvision.models.alexnet, "vgg16": torchvision.models.vgg16}


def _stand_in_features(arch: str) -> torch.nn.Sequential:
    """torchvision's ``features`` of ``arch``, freshly initialised from a fixed seed."""
    with torch.device("meta"):  # the classifier is never built
        features = ARCHS[arch](weights=None).features
    features = features.to_empty(device="cpu")
    torch.manual_seed({"alexnet": 1, "vgg16": 2}[arch])
    for module in features.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.reset_parameters()
    return features


def _authors_backbone(monkeypatch: pytest.MonkeyPatch, module, arch: str) -> None:
    """The authors' code builds ``torchvision.models.<arch>(...).features``: hand it the
    stand-in (the only part of the network it keeps)."""
    features = _stand_in_features(arch)
    monkeypatch.setattr(module, arch, lambda *a, **k: SimpleNamespace(features=features))


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory) -> Iterator[Path]:
    """A TORCH_HOME whose hub cache holds stand-in AlexNet and VGG16 weights (the ``features``
    entries of torchvision's state dicts: all that LPIPS and DISTS read)."""
    home = tmp_path_factory.mktemp("torch_home")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("TORCH_HOME", str(home))
        for arch in ARCHS:
            path = perceptual.backbone_path(arch)
            path.parent.mkdir(parents=True, exist_ok=True)
            features = _stand_in_features(arch).state_dict()
            torch.save({f"features.{k}": v for k, v in features.items()}, path)
        yield home


@pytest.fixture
def cached(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home


@pytest.fixture
def uncached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    return tmp_path / "empty_torch_home"


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_data, tmp_path_factory.mktemp("perceptual"))


def _images(channels: int = 3, side: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(3, channels, side, side - 8, generator=g) * 2 - 1
    fake = (real + 0.4 * torch.randn(real.shape, generator=g)).clamp(-1, 1)
    return fake, real


@pytest.mark.parametrize("net,arch", [("alex", "alexnet"), ("vgg", "vgg16")])
def test_lpips_matches_the_authors_package(
    cached: Path, net: str, arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lpips = pytest.importorskip("lpips")
    ours = perceptual.build_metric(f"lpips_{net}")  # from the TORCH_HOME cache
    _authors_backbone(monkeypatch, lpips.pretrained_networks.tv, arch)
    reference = lpips.LPIPS(net=net, verbose=False).eval()  # with their lin weights
    fake, real = _images()
    with torch.no_grad():
        expected = reference(fake, real).flatten()
    got = ours(fake, real)
    assert got.shape == (3,) and (got > 0).all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert torch.allclose(ours(real, real), torch.zeros(3))
    grey_fake, grey_real = _images(channels=1)  # one channel: repeated to RGB
    expanded = ours(grey_fake.expand(-1, 3, -1, -1), grey_real.expand(-1, 3, -1, -1))
    torch.testing.assert_close(ours(grey_fake, grey_real), expanded)


def test_dists_matches_the_authors_package(cached: Path, monkeypatch) -> None:
    dists_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt")
    ours = perceptual.build_metric("dists")
    _authors_backbone(monkeypatch, dists_pt.models, "vgg16")
    reference = dists_pt.DISTS(load_weights=False)  # their weights.pt is read below
    shipped = torch.load(
        Path(dists_pt.__file__).with_name("weights.pt"), map_location="cpu", weights_only=True
    )
    reference.alpha.data, reference.beta.data = shipped["alpha"], shipped["beta"]
    fake, real = _images()
    expected = reference((fake + 1) / 2, (real + 1) / 2).detach()  # DISTS takes [0, 1]
    got = ours(fake, real)
    assert got.shape == (3,) and (got > 0).all()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_learnt_weights_are_the_authors_files() -> None:
    """torchmetrics ships the authors' LPIPS v0.1 lin layers and DISTS alpha/beta unchanged."""
    lpips = pytest.importorskip("lpips")
    dists = pytest.importorskip("DISTS_pytorch")
    for net in ("alex", "vgg"):
        authors = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        ours = perceptual.learnt_weights_path(f"lpips_{net}")
        assert ours.read_bytes() == authors.read_bytes()
    authors = Path(dists.__file__).parent / "weights.pt"
    assert perceptual.learnt_weights_path("dists").read_bytes() == authors.read_bytes()


def test_eval_scores_lpips_and_dists_with_cached_weights(
    cached: Path, run: Path, tmp_path: Path
) -> None:
    record = evaluate_run(run, out_dir=tmp_path / "e")
    saved = json.loads((tmp_path / "e" / "val.json").read_text())
    for key in ("lpips_alex", "lpips_vgg", "dists"):
        assert math.isfinite(saved[key]) and saved[key] == record[key]
    assert saved["notes"] == []
    # the same numbers as the modules on the same images, averaged per image
    _, b, fake = val_translations(run)
    backbones: dict = {}  # VGG16 read once
    for key in ("lpips_alex", "lpips_vgg", "dists"):
        direct = perceptual.build_metric(key, backbones)(fake, b).mean()
        assert saved[key] == pytest.approx(float(direct), abs=1e-6)
    without = evaluate_run(run, out_dir=tmp_path / "p", perceptual=False)
    assert "lpips_alex" not in without and without["notes"] == []


def test_offline_and_uncached_is_one_line_per_file_and_the_rest_runs(
    uncached: Path, run: Path, tmp_path: Path, capsys
) -> None:
    record = evaluate_run(run, out_dir=tmp_path / "e")
    assert {"l1", "psnr", "ssim"} <= record.keys() and "lpips_alex" not in record
    checkpoints = uncached / "hub" / "checkpoints"
    alex, vgg = record["notes"]
    assert alex.startswith("lpips_alex left out: needs alexnet-owt-7be5be79.pth")
    assert str(checkpoints / "alexnet-owt-7be5be79.pth") in alex
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in alex
    assert vgg.startswith("lpips_vgg, dists left out: needs vgg16-397923af.pth")
    assert str(checkpoints / "vgg16-397923af.pth") in vgg
    assert not checkpoints.exists()  # nothing downloaded
    code = main(["eval", str(run), "--num-samples", "0"])
    out, err = capsys.readouterr()
    assert code == 0 and "SSIM" in out and "LPIPS" not in out
    assert err.splitlines() == [f"note: {alex}", f"note: {vgg}"]


def test_an_unusable_weights_file_is_one_line(uncached: Path) -> None:
    path = perceptual.backbone_path("alexnet")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    notes = build_metric_set(["l1", "lpips_alex"]).notes
    assert len(notes) == 1 and "not a readable" in notes[0] and "download" in notes[0]
    torch.save({"features.0.weight": torch.zeros(1)}, path)  # a state dict of another net
    (note,) = build_metric_set(["lpips_alex"]).notes
    assert "not torchvision's alexnet weights" in note and "\n" not in note


def test_images_a_network_cannot_take_leave_only_its_metric_out(cached: Path) -> None:
    scores = build_metric_set(["l1", "lpips_alex", "lpips_vgg"])
    fake, real = _images(side=32)
    scores.update(fake, real)
    values = scores.compute()
    assert set(values) == {"l1", "lpips_vgg"}
    assert scores.notes == [
        "lpips_alex left out: images of 32x24 are smaller than the 31 px its network needs"
    ]
    four = build_metric_set(["l1", "dists"])
    four.update(torch.zeros(2, 4, 32, 32), torch.ones(2, 4, 32, 32))
    assert set(four.compute()) == {"l1"}
    assert four.notes == ["dists left out: it takes 1- or 3-channel images, these have 4"]


def test_validation_scores_lpips_and_dists_when_cached(
    cached: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from ganzoo.training.trainer import train

    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=2",
        "train.sample_every=1",
        "train.callbacks=[losses, {name: validation, metrics: [l1, ssim, lpips_alex, dists]}]",
    )
    trainer, final = train(recipe, run_dir=tmp_path / "run", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    vals = [r for r in logged if "val_l1" in r]
    assert [r["step"] for r in vals] == [1, 2]
    for r in vals:
        assert {"val_l1", "val_ssim", "val_lpips_alex", "val_dists"} <= r.keys()
        assert "val_psnr" not in r and math.isfinite(r["val_dists"])
    assert final["val_lpips_alex"] == vals[-1]["val_lpips_alex"]


def test_validation_without_weights_notes_once_and_trains(
    uncached: Path, tiny_data: Path, tmp_path: Path
) -> None:
    from ganzoo.training.observers import TrainingWarning
    from ganzoo.training.trainer import train

    recipe = tiny_recipe(
        tiny_data,
        "train.max_steps=2",
        "train.sample_every=1",
        "train.callbacks=[{name: validation, metrics: [l1, lpips_vgg]}]",
    )
    with pytest.warns(TrainingWarning, match="validation: lpips_vgg left out: needs vgg16"):
        _, final = train(recipe, run_dir=tmp_path / "run", progress=False)
    assert final["step"] == 2 and "val_l1" in final and "val_lpips_vgg" not in final


def test_the_run_report_draws_the_validation_lpips_and_dists_curves() -> None:
    from ganzoo.report.run import curves_png

    records = [{"step": s, "epoch": 0, "val_dists": 0.3 / s, "val_ssim": 0.5} for s in (1, 2)]
    assert curves_png(records) is not None  # panels of their own (none drew them before)
