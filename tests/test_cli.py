"""The command line: one-line errors, exit codes, list/check/schema/version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganzoo import __version__
from ganzoo.cli import main

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


def test_list_shows_every_kind(capsys) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0
    for name in ("unet_256", "patchgan", "self_attention", "vanilla", "aligned"):
        assert name in out
    assert "built-in" in out


def test_list_one_kind_accepts_plural(capsys) -> None:
    code, out, _ = run(capsys, "list", "discriminators")
    assert code == 0 and "multiscale" in out and "unet_256" not in out


def test_check_prints_resolved_recipe(capsys) -> None:
    code, out, err = run(capsys, "check", str(RECIPES / "pix2pix_resnet9.yaml"))
    assert code == 0
    assert "resnet_9blocks" in out and "load_size: 286" in out and "ok" in err


def test_check_typo_suggests_in_one_line(capsys) -> None:
    code, out, err = run(
        capsys, "check", str(RECIPES / "pix2pix_unet256.yaml"), "--set", "generator.name=unet_265"
    )
    assert code == 2
    assert "did you mean 'unet_256'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "override, expected",
    [
        ("discriminator.n_layers=three", "discriminator.n_layers: expected an integer"),
        ("data.crop_size=200", "nearest valid sizes: 256x256"),
        ("train.precision=fp8", "train.precision: expected one of"),
    ],
)
def test_check_user_errors_are_one_line(capsys, override: str, expected: str) -> None:
    code, _, err = run(capsys, "check", str(RECIPES / "pix2pix_unet256.yaml"), "--set", override)
    assert code == 2 and expected in err
    assert len(err.strip().splitlines()) == 1


def test_check_missing_and_malformed_files(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "nope.yaml"))
    assert code == 2 and "no such recipe file" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    code, _, err = run(capsys, "check", str(bad))
    assert code == 2 and "malformed YAML" in err and "Traceback" not in err


def test_schema_is_json(capsys) -> None:
    code, out, _ = run(capsys, "schema")
    assert code == 0 and "discriminator" in json.loads(out)["properties"]


def test_unknown_command_is_a_usage_error(capsys) -> None:
    code, _, _ = run(capsys, "frobnicate")
    assert code == 2


def test_show_prints_params_shapes_flops_and_receptive_fields(capsys) -> None:
    code, out, _ = run(capsys, "show", str(RECIPES / "pix2pix_unet256.yaml"))
    assert code == 0
    assert "54,413,955" in out and "2,768,705" in out  # unet_256 and the 70x70 PatchGAN
    assert "1x30x30" in out and "70x70" in out and "GFLOPs" in out


def test_show_refuses_a_bad_size_in_one_line(capsys) -> None:
    code, _, err = run(
        capsys, "show", str(RECIPES / "pix2pix_unet256.yaml"), "--set", "data.crop_size=200"
    )
    assert code == 2 and "nearest valid sizes: 256x256" in err


def test_train_nproc_validates_then_runs_torchrun(capsys, monkeypatch) -> None:
    import torch.distributed.run as torchrun

    calls = []
    monkeypatch.setattr(torchrun, "run", calls.append)
    recipe = str(RECIPES / "quickstart.yaml")
    # a bad recipe fails once, in this process, before any worker starts
    code, _, err = run(capsys, "train", recipe, "--nproc", "2", "--set", "train.max_steps=x")
    assert code == 2 and "train.max_steps" in err and calls == []
    # a good one runs `torchrun --standalone --nproc_per_node 2 -m ganzoo train ...` here
    assert main(["train", recipe, "--nproc", "2", "--set", "train.max_steps=3"]) == 0
    ((args,),) = [calls]
    assert args.standalone and args.nproc_per_node == "2" and args.module
    assert args.training_script == "ganzoo"
    assert args.training_script_args == ["train", recipe, "--set", "train.max_steps=3"]
