"""`ganzoo eval`: L1 / PSNR / SSIM over a whole split, the sample sheet, FID/KID and its weights."""

from __future__ import annotations

import json
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch
from conftest import train_tiny_run, val_translations
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure

from ganzoo import metrics
from ganzoo.cli import main
from ganzoo.errors import DataError, GanzooError
from ganzoo.evaluation.evaluate import evaluate_run
from ganzoo.scoring import fid as fid_module
from ganzoo.scoring.fid import INCEPTION_FILE, INCEPTION_URL, InceptionDistances


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_data, tmp_path_factory.mktemp("eval"))


def test_metrics_on_known_images() -> None:
    real = torch.zeros(2, 3, 16, 16)
    fake = torch.full((2, 3, 16, 16), 0.5)  # 0.25 off on the [0, 1] scale
    assert torch.allclose(metrics.l1(fake, real), torch.tensor([0.5, 0.5]))
    assert torch.allclose(
        metrics.psnr(fake, real), torch.full((2,), 10 * torch.log10(torch.tensor(16.0)))
    )
    assert torch.allclose(metrics.ssim(real, real), torch.ones(2))
    small = metrics.ssim(torch.rand(1, 1, 8, 8) * 2 - 1, torch.rand(1, 1, 8, 8) * 2 - 1)
    assert small.shape == (1,) and -1 <= float(small) <= 1  # window shrinks to 7 for 8x8


def test_eval_json_matches_a_direct_computation(run: Path) -> None:
    record = evaluate_run(run, "val", num_samples=3)
    saved = json.loads((run / "eval" / "val.json").read_text())
    assert {k: v for k, v in record.items() if k != "json"} == saved
    assert saved["n"] == 4 and saved["step"] == 3 and saved["mode"] == "auto" and saved["ema"]
    assert saved["checkpoint"].endswith("step_00000003.pt")

    _, b, fake = val_translations(run)
    l1 = (fake - b).abs().mean(dim=(1, 2, 3)).mean()
    mse = (((fake + 1) / 2 - (b + 1) / 2) ** 2).mean(dim=(1, 2, 3))
    psnr = (10 * torch.log10(1 / mse)).mean()
    ssim = structural_similarity_index_measure((fake + 1) / 2, (b + 1) / 2, data_range=1.0)
    assert saved["l1"] == pytest.approx(float(l1), abs=1e-5)
    assert saved["psnr"] == pytest.approx(float(psnr), abs=1e-4)
    assert saved["ssim"] == pytest.approx(float(ssim), abs=1e-5)
    # the trainer's last validation saw the same 4 pairs (val_batches 2 x batch 2) with the same G
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert saved["l1"] == pytest.approx(last["val_l1"], abs=1e-6)
    assert saved["psnr"] == pytest.approx(last["val_psnr"], abs=1e-4)
    with Image.open(run / "eval" / "val.png") as sheet:  # 3 rows of input | output | target
        assert sheet.size == (3 * 34 + 2, 3 * 34 + 2)


def test_train_mode_is_recorded_and_scores_differently(run: Path, tmp_path: Path) -> None:
    ev = evaluate_run(run, out_dir=tmp_path / "ev")
    tr = evaluate_run(run, mode="train", out_dir=tmp_path / "tr")
    assert tr["mode"] == "train" and tr["l1"] != ev["l1"]
    assert not (tmp_path / "tr" / "val.png").exists()  # num_samples=0: no sheet


def test_data_override_and_missing_data(run: Path, tiny_data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    (other / "val").mkdir(parents=True)
    for name in ("0.png", "1.png"):
        shutil.copy(tiny_data / "val" / name, other / "val" / name)
    record = evaluate_run(run, data_root=other, out_dir=tmp_path / "e")
    assert record["n"] == 2 and record["data_root"] == str(other)
    with pytest.raises(DataError, match="does not exist") as info:
        evaluate_run(run, data_root=tmp_path / "nowhere")
    assert "\n" not in str(info.value)


def test_missing_split_is_one_line(run: Path) -> None:
    with pytest.raises(DataError) as info:
        evaluate_run(run, "test")
    msg = str(info.value)
    assert "no split 'test'" in msg and "--split" in msg and "\n" not in msg


class TinyFeatures(torch.nn.Module):
    """A fixed random feature extractor: uint8 (N, 3, H, W) -> (N, 16)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.float() / 255).relu().mean(dim=(2, 3))


def test_fid_and_kid_with_a_local_feature_extractor(run: Path, tmp_path: Path) -> None:
    record = evaluate_run(run, fid=True, feature_extractor=TinyFeatures(), out_dir=tmp_path)
    assert record["fid"] > 0 and record["kid_std"] >= 0 and record["fid_features"] == "TinyFeatures"
    images = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    same, other = InceptionDistances(TinyFeatures()), InceptionDistances(TinyFeatures())
    same.update(images, images)
    other.update(images.clamp(0, 1), images)  # the dark half of every image lost
    same, other = same.compute(), other.compute()
    assert abs(same["fid"]) < 1e-6 and other["fid"] > 1e-3
    assert abs(same["kid"]) < 1e-3 and other["kid"] > 10 * abs(same["kid"])  # KID: unbiased


def test_fid_offline_says_how_to_provide_the_weights(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(fid_module.WEIGHTS_ENV, raising=False)

    def offline(url: str, dest: Path) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(fid_module, "_download", offline)
    with pytest.raises(GanzooError) as info:
        fid_module.inception_weights()
    msg = str(info.value)
    assert "\n" not in msg and "could not be downloaded (" in msg
    assert INCEPTION_URL in msg and "--inception-weights" in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_FILE) in msg
    with pytest.raises(GanzooError, match="no such file"):
        fid_module.inception_weights(tmp_path / "missing.pth")


def test_fid_without_torch_fidelity_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(fid_module, "has_torch_fidelity", lambda: False)
    with pytest.raises(GanzooError, match=r"pip install 'ganzoo\[fid\]'"):
        fid_module.inception_extractor()


def test_inception_loads_from_a_weights_file(monkeypatch, tmp_path: Path) -> None:
    tf = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    # no network: a randomly initialised network of the right shape stands in for the weights
    with monkeypatch.context() as m:
        m.setattr(tf, "load_state_dict_from_url", lambda *a, **k: None)
        m.setattr(tf.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        net = tf.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), tmp_path / INCEPTION_FILE)
    (tmp_path / "garbage.pth").write_bytes(b"garbage")
    with pytest.raises(GanzooError, match="not a readable Inception weights file"):
        fid_module.inception_extractor(tmp_path / "garbage.pth")
    monkeypatch.setenv(fid_module.WEIGHTS_ENV, str(tmp_path / INCEPTION_FILE))
    inception = fid_module.inception_extractor()
    with torch.no_grad():  # one image: Inception at 299x299 is slow on a CPU
        features = inception(torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8))
    assert features.shape == (1, 2048)


def test_cli_eval(run: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code = main(["eval", str(run), "--split", "val", "--num-samples", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "PSNR" in out and "SSIM" in out and "4 images, eval mode" in out
    assert (run / "eval" / "val.json").is_file() and (run / "eval" / "val.png").is_file()
    code = main(["eval", str(run), "--split", "test"])
    _, err = capsys.readouterr()
    assert code == 2 and "no split 'test'" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(fid_module, "has_torch_fidelity", lambda: True)
    monkeypatch.setattr(
        fid_module,
        "_download",
        lambda url, dest: (_ for _ in ()).throw(urllib.error.URLError("offline")),
    )
    code = main(["eval", str(run), "--fid"])
    _, err = capsys.readouterr()
    assert code == 2 and INCEPTION_FILE in err and len(err.strip().splitlines()) == 1


def test_inception_weights_download_from_a_local_server(tmp_path, monkeypatch) -> None:
    """The real download path, against http.server on 127.0.0.1 (never the internet)."""
    import functools
    import http.server
    import threading

    from ganzoo.errors import GanzooError
    from ganzoo.scoring import fid

    served = tmp_path / "served"
    served.mkdir()
    (served / fid.INCEPTION_FILE).write_bytes(b"not really inception" * 100)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    try:
        port = server.server_address[1]
        path = fid.inception_weights(url=f"http://127.0.0.1:{port}/{fid.INCEPTION_FILE}")
        assert path == fid.cached_weights_path() and path.read_bytes().startswith(b"not really")
        path.unlink()
        with pytest.raises(GanzooError) as info:  # a 404: one line, nothing left behind
            fid.inception_weights(url=f"http://127.0.0.1:{port}/missing.pth")
        assert "could not be downloaded" in str(info.value) and "\n" not in str(info.value)
        assert list(path.parent.iterdir()) == []
    finally:
        server.shutdown()
        server.server_close()
