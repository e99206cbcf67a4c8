"""Saved models have one home, ``ganzoo.artifacts``: the save/load pair, and the layering.

* ``artifacts.save`` writes a generator in hand as a Hub folder and ``artifacts.load`` reads it
  back with bit-identical outputs (the Hub folder *is* the saved folder);
* training, ``ganzoo import weights`` and the artifacts themselves import no evaluation module
  (the training <-> evaluation circle is gone), and the artifacts nothing of training, the
  upstream importer or the pretrained catalogue (a pretrained name is resolved above them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from conftest import tiny_recipe

from ganzoo import artifacts
from ganzoo.build import build_generator

ROOT = Path(__file__).resolve().parents[1]


def test_save_writes_a_hub_folder_that_load_reads_back(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(tiny_data)
    torch.manual_seed(0)
    net = build_generator(recipe).eval()
    info = artifacts.GeneratorInfo(tmp_path / "g", "checkpoint", 7, False)
    folder = artifacts.save(net, recipe, info, tmp_path / "hub")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "config.json", artifacts.MODEL_FILE, "recipe.yaml"]
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "ganzoo-hub-1" and config["step"] == 7
    loaded, loaded_recipe, loaded_info = artifacts.load(folder)
    assert loaded_info.kind == "safetensors" and loaded_info.step == 7 and not loaded_info.ema
    assert loaded_recipe.to_dict() == recipe.to_dict()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return {m for m in out.split() if m.startswith("ganzoo")}


def test_training_and_saved_models_import_no_evaluation() -> None:
    loaded = _modules_after("import ganzoo.training.trainer, ganzoo.upstream, ganzoo.artifacts")
    assert "ganzoo.artifacts.checkpoint" in loaded
    assert not [m for m in loaded if m.startswith(("ganzoo.evaluation", "ganzoo.pretrained"))]
    below = _modules_after("import ganzoo.artifacts")
    higher = ("ganzoo.training", "ganzoo.upstream", "ganzoo.pretrained", "ganzoo.evaluation")
    assert not [m for m in below if m.startswith(higher)]
