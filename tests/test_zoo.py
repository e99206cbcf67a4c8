"""Using models without training: official pretrained models, the Hugging Face Hub, ganzoo.load.

Downloads go to a real HTTP server on 127.0.0.1 (``file_server``) and the Hub is a stand-in
server (tests/hub_server.py) that the real ``huggingface_hub`` client talks to.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_tiny_run
from PIL import Image

import ganzoo
from ganzoo import pretrained
from ganzoo.cli import main
from ganzoo.errors import GanzooError

hub = pytest.importorskip("huggingface_hub")


# -- official pretrained models ------------------------------------------------------------------
def upstream_unet256(ngf: int = 8) -> dict[str, torch.Tensor]:
    """A unet_256 generator state dict with the upstream's key names (the U-Net's module tree is
    the upstream's, so ganzoo's own keys are those names), random values."""
    from ganzoo import registry

    torch.manual_seed(0)
    net = registry.create("generator", "unet_256", 3, 3, ngf=ngf, norm="batch", dropout=True)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in state
    return state


@pytest.fixture
def small_catalogue(monkeypatch: pytest.MonkeyPatch) -> pretrained.Pretrained:
    """facades_label2photo as catalogued, at ngf 8 so that its file is small."""
    entry = pretrained.CATALOG["facades_label2photo"]
    small = dataclasses.replace(entry, flags=entry.flags.replace("--ngf 64", "--ngf 8"))
    monkeypatch.setitem(pretrained.CATALOG, entry.name, small)
    return small


def serve(file_server, state: dict) -> bytes:  # noqa: ANN001
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    file_server.files["/models/facades_label2photo.pth"] = data
    return data


def test_the_catalogue_names_the_official_models_and_their_flags(capsys) -> None:
    assert list(pretrained.CATALOG) == [
        "facades_label2photo",
        "sat2map",
        "map2sat",
        "edges2shoes",
        "day2night",
    ]
    facades = pretrained.CATALOG["facades_label2photo"]
    assert facades.url == (
        "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth"
    )
    assert "--netG unet_256 --norm batch" in facades.all_flags
    assert facades.all_flags.endswith("--direction BtoA")
    code = main(["pretrained", "list"])
    out = capsys.readouterr().out
    assert code == 0 and "sat2map" in out and "BSD" in out and "Isola" in out
    with pytest.raises(GanzooError, match="did you mean 'sat2map'"):
        pretrained.model("sat2mapp")


def test_fetch_downloads_imports_and_is_then_used(
    file_server, small_catalogue, tmp_path: Path, tiny_data: Path
) -> None:
    state = upstream_unet256()
    serve(file_server, state)
    base = file_server.url("/models")
    fetched = pretrained.fetch_pretrained(
        "facades_label2photo", tmp_path / "zoo", base_url=base, progress=False
    )
    assert fetched.downloaded and fetched.run_dir == tmp_path / "zoo" / "facades_label2photo"
    assert not list((tmp_path / "zoo").glob("*.pth*"))  # the raw file is gone
    model = ganzoo.load(fetched.run_dir)
    assert (
        model.recipe.generator.name == "unet_256"
        and model.recipe.data.params["direction"] == "BtoA"
    )
    assert torch.equal(
        dict(model.generator.state_dict())["model.model.0.weight"], state["model.model.0.weight"]
    )
    # a second fetch downloads nothing
    again = pretrained.fetch_pretrained("facades_label2photo", tmp_path / "zoo", base_url=base)
    assert not again.downloaded and len(file_server.requests) == 1
    # translate and eval accept it (A|B files, the right half is the label map)
    out = tmp_path / "out"
    code = main(
        [
            "translate",
            str(fetched.run_dir),
            "-i",
            str(tiny_data / "val"),
            "-o",
            str(out),
            "--size",
            "256",
            "--resize",
            "--plain",
        ]
    )
    assert code == 0 and len(list(out.glob("*.png"))) == 4


def test_fetch_resumes_a_cut_download(file_server, small_catalogue, tmp_path: Path) -> None:
    data = serve(file_server, upstream_unet256())
    file_server.cut_next_after = len(data) // 3
    base = file_server.url("/models")
    with pytest.raises(GanzooError, match="run the same command again to resume"):
        pretrained.fetch_pretrained("facades_label2photo", tmp_path, base_url=base, progress=False)
    assert (tmp_path / "facades_label2photo.pth.part").stat().st_size == len(data) // 3
    pretrained.fetch_pretrained("facades_label2photo", tmp_path, base_url=base, progress=False)
    assert file_server.requests[-1][1] == f"bytes={len(data) // 3}-"
    assert not list(tmp_path.glob("*.part"))


def test_a_corrupt_or_wrong_file_is_refused_and_deleted(
    file_server, small_catalogue, tmp_path: Path
) -> None:
    file_server.files["/models/facades_label2photo.pth"] = b"not a checkpoint" * 100
    with pytest.raises(GanzooError) as info:
        pretrained.fetch_pretrained(
            "facades_label2photo", tmp_path, base_url=file_server.url("/models"), progress=False
        )
    assert "did not hold the expected facades_label2photo generator" in str(info.value)
    assert "\n" not in str(info.value)
    wrong = upstream_unet256(ngf=4)  # another architecture than the catalogue says
    serve(file_server, wrong)
    with pytest.raises(GanzooError, match="check --ngf"):
        pretrained.fetch_pretrained(
            "facades_label2photo", tmp_path, base_url=file_server.url("/models"), progress=False
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_model_and_no_network_say_what_to_do_by_hand(
    file_server, small_catalogue, tmp_path: Path, capsys
) -> None:
    def fetch(url: str) -> int:
        return main(
            ["pretrained", "fetch", "facades_label2photo", "--to", str(tmp_path), "--from", url]
        )

    code = fetch(file_server.url("/nothing"))
    err = capsys.readouterr().err
    assert code == 2 and "HTTP 404" in err and len(err.strip().splitlines()) == 1
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = fetch(f"http://127.0.0.1:{port}/m")
    err = capsys.readouterr().err
    assert code == 2 and "could not reach" in err
    official = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth"
    assert f"download {official} by hand" in err
    assert "ganzoo import weights facades_label2photo.pth" in err and "--direction BtoA" in err


def test_load_takes_a_pretrained_name(
    file_server, small_catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(file_server, upstream_unet256())
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(pretrained.MIRROR_ENV, file_server.url("/models"))
    model = ganzoo.load("facades_label2photo")
    assert (tmp_path / "home" / "pretrained" / "facades_label2photo" / "recipe.yaml").is_file()
    assert model(torch.zeros(3, 256, 256)).shape == (3, 256, 256)


def test_the_cli_takes_a_pretrained_name(
    file_server, small_catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI turns the name into its run directory (ganzoo.artifacts knows no names)."""
    serve(file_server, upstream_unet256())
    monkeypatch.setenv("GANZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(pretrained.MIRROR_ENV, file_server.url("/models"))
    out = tmp_path / "g.safetensors"
    assert main(["export", "facades_label2photo", "--out", str(out)]) == 0
    assert (tmp_path / "home" / "pretrained" / "facades_label2photo" / "recipe.yaml").is_file()
    assert ganzoo.load(out).info.kind == "safetensors"


# -- the Hugging Face Hub ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_data: Path) -> Path:
    """A tiny trained run with an EMA and an eval record."""
    folder = tmp_path_factory.mktemp("zoo")
    run_dir = train_tiny_run(tiny_data, folder)
    assert main(["eval", str(run_dir), "--num-samples", "2"]) == 0
    return run_dir


def test_export_hub_writes_a_model_card_and_loads_back_bit_identically(
    run: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "hub"
    assert main(["export", str(run), "--format", "hub", "--out", str(folder)]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "config.json", "model.safetensors", "recipe.yaml", "samples.png"]
    card = (folder / "README.md").read_text()
    front = card.split("---")[1]
    import yaml

    meta = yaml.safe_load(front)
    assert meta["library_name"] == "ganzoo" and "pix2pix" in meta["tags"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "val" and result["metrics"][0]["name"] == "L1 (eval mode)"
    assert "Isola et al." in card and "![input | output | target](samples.png)" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "ganzoo-hub-1" and config["ema"] is True and config["step"] == 3
    # offline, from the folder: bit-identical outputs
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    code = (
        "import sys, torch, ganzoo; x = torch.load(sys.argv[2]); "
        "torch.save(ganzoo.load(sys.argv[1], device='cpu')(x), sys.argv[3])"
    )
    torch.save(x, tmp_path / "x.pt")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-c", code, str(folder), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
        check=True,
        env=env,
    )
    expected = ganzoo.load(run, device="cpu")(x)
    assert torch.equal(torch.load(tmp_path / "y.pt"), expected)


def test_push_then_load_hf_url_round_trips(
    run: Path, hub_server, tmp_path: Path, tiny_data: Path, capsys, monkeypatch
) -> None:
    code = main(["push", str(run), "someone/tiny-facades"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "load it with ganzoo.load('hf://someone/tiny-facades')" in out
    stored = hub_server.repos["someone/tiny-facades"]
    assert {"model.safetensors", "README.md", "config.json", "recipe.yaml"} <= set(stored)
    assert 'ganzoo.load("hf://someone/tiny-facades")' in stored["README.md"].decode()
    assert any(t == "Bearer hf_test_token" for t in hub_server.tokens)  # the library's token
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    expected = ganzoo.load(run, device="cpu")(x)
    for source in ("hf://someone/tiny-facades", "someone/tiny-facades"):
        assert torch.equal(ganzoo.load(source, device="cpu")(x), expected)
    # translate and eval take it too; eval writes into ./tiny-facades/eval, not the cache
    os.chdir(tmp_path)
    assert main(
        [
            "translate",
            "hf://someone/tiny-facades",
            "-i",
            str(run.parent / "run" / "samples"),
            "-o",
            "o",
            "--plain",
            "--size",
            "32",
            "--resize",
        ]
    ) in (0, 2)
    # offline: the cache serves it, the server is not asked
    calls = len(hub_server.calls)
    code = "import sys, ganzoo; print(ganzoo.load(sys.argv[1], device='cpu').info.step)"
    done = subprocess.run(
        [sys.executable, "-c", code, "hf://someone/tiny-facades"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3" and len(hub_server.calls) == calls


def test_hub_errors_are_one_line(hub_server, run: Path) -> None:
    with pytest.raises(GanzooError) as info:
        ganzoo.load("hf://someone/missing")
    assert "could not get the model from the Hub" in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(GanzooError, match="NAMESPACE/NAME"):
        from ganzoo.artifacts.hub import push

        push(run, "not a repo id")


def _hub_repo(hub_server, run: Path, tmp_path: Path, repo: str = "someone/m") -> bytes:
    """A repository on the stand-in Hub holding an exported model and files it does not need."""
    assert main(["export", str(run), "--out", str(tmp_path / "g.safetensors")]) == 0
    model = (tmp_path / "g.safetensors").read_bytes()
    hub_server.repos[repo] = {
        "model.safetensors": model,
        "README.md": b"# m",
        "big.bin": b"0" * 999,
    }
    hub_server.commits[repo] = "a" * 40
    return model


def test_a_hub_model_fetches_only_its_model_file(hub_server, run: Path, tmp_path: Path) -> None:
    _hub_repo(hub_server, run, tmp_path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(ganzoo.load("hf://someone/m", device="cpu")(x), ganzoo.load(run)(x))
    fetched = {path for method, path in hub_server.calls if method == "GET"}
    assert fetched == {"/someone/m/resolve/main/model.safetensors"}  # not README.md, big.bin


@pytest.mark.parametrize("behaviour, expected", [("endless", "passed"), ("trickle", "deadline")])
def test_a_hostile_hub_download_is_cut_and_leaves_nothing(
    hub_server, run: Path, tmp_path: Path, monkeypatch, behaviour: str, expected: str
) -> None:
    from ganzoo.artifacts import sources
    from ganzoo.download import Limits

    _hub_repo(hub_server, run, tmp_path)
    hub_server.behaviour["model.safetensors"] = behaviour
    limits = Limits(max_bytes=1 << 40, stall_seconds=1e9, stall_bytes=1, min_rate=0, deadline=0.5)
    monkeypatch.setattr(sources, "HUB_LIMITS", limits)
    with pytest.raises(GanzooError) as info:
        ganzoo.load("hf://someone/m")
    assert expected in str(info.value) and "\n" not in str(info.value)
    home = tmp_path / "ganzoo_home"
    assert not [p for p in home.rglob("*") if p.is_file()]  # no .part, no model


def test_a_hub_model_is_checked_against_its_lfs_sha256(
    hub_server, run: Path, tmp_path: Path
) -> None:
    import hashlib

    model = _hub_repo(hub_server, run, tmp_path)
    hub_server.etags["model.safetensors"] = hashlib.sha256(model + b"x").hexdigest()
    with pytest.raises(GanzooError, match="SHA-256 is .* not the expected") as info:
        ganzoo.load("hf://someone/m")
    assert "\n" not in str(info.value)
    assert not [p for p in (tmp_path / "ganzoo_home").rglob("*") if p.is_file()]
    hub_server.etags["model.safetensors"] = hashlib.sha256(model).hexdigest()
    assert ganzoo.load("hf://someone/m").info.kind == "safetensors"


def test_a_hub_model_larger_than_the_bound_is_refused_before_downloading(
    hub_server, run: Path, tmp_path: Path, monkeypatch
) -> None:
    from ganzoo.artifacts import sources
    from ganzoo.download import Limits

    size = len(_hub_repo(hub_server, run, tmp_path))
    monkeypatch.setattr(sources, "HUB_LIMITS", Limits(max_bytes=size - 1))
    with pytest.raises(GanzooError, match=f"is {size:,} bytes, more than the {size - 1:,}"):
        ganzoo.load("hf://someone/m")
    assert not [path for method, path in hub_server.calls if method == "GET"]


# -- ganzoo.load ----------------------------------------------------------------------------------
def test_load_takes_every_local_source_and_every_kind_of_image(run: Path, tmp_path: Path) -> None:
    model = ganzoo.load(run, device="cpu")
    assert isinstance(model, torch.nn.Module) and model.mode == "auto" and model.info.ema
    checkpoint = sorted((run / "checkpoints").glob("*.pt"))[-1]
    assert main(["export", str(run), "--out", str(tmp_path / "g.safetensors")]) == 0
    x = torch.rand(3, 32, 32) * 2 - 1
    y = model(x)
    for source in (checkpoint, tmp_path / "g.safetensors", str(run)):
        assert torch.equal(ganzoo.load(source, device="cpu")(x), y)
    # a batch, sizes the network does not take (padded and cropped back), PIL, numpy, uint8
    assert model(torch.rand(2, 3, 30, 45) * 2 - 1).shape == (2, 3, 30, 45)
    image = Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8))
    out = model(image)
    assert isinstance(out, Image.Image) and out.size == (40, 30) and out.mode == "RGB"
    array = np.asarray(image)
    assert np.array_equal(np.asarray(out), model(array))
    as_float = model(array.astype(np.float32) / 255)
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 1
    as_uint8 = model(torch.from_numpy(array).permute(2, 0, 1).contiguous())
    assert as_uint8.dtype == torch.uint8 and as_uint8.shape == (3, 30, 40)
    with pytest.raises(GanzooError, match="3-channel images"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(GanzooError, match="cannot translate a str"):
        model("image.png")
    # bf16 and train mode
    assert ganzoo.load(run, precision="bf16")(x).dtype == torch.float32
    train_mode = ganzoo.load(run, mode="train", seed=1)
    assert torch.equal(train_mode(x), ganzoo.load(run, mode="train", seed=1)(x))


def test_translate_folders_like_the_cli(run: Path, tiny_data: Path, tmp_path: Path) -> None:
    model = ganzoo.load(run)
    result = model.translate(tiny_data / "val", tmp_path / "out")
    assert len(result.outputs) == 4 and result.paired == 4  # A|B files, as the CLI reads them
    cli = tmp_path / "cli"
    assert main(["translate", str(run), "-i", str(tiny_data / "val"), "-o", str(cli)]) == 0
    for path in result.outputs:
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(cli / path.name)))
