"""`ganzoo check` and `ganzoo show` of every shipped recipe, as a new user runs them first
(`show` of lines2face*.yaml and of spade_labels.yaml at crop 64 used to end in a traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganzoo import registry
from ganzoo.cli import main
from ganzoo.recipe import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))


def narrow(path: Path) -> list[str]:
    """--set overrides giving the recipe's G and D width 4 where they take ``ngf`` / ``ndf``
    (the same layers and sizes, a fraction of the compute)."""
    r = load_recipe(path, [])
    sets = []
    for kind, section, width in (
        ("generator", r.generator, "ngf"),
        ("discriminator", r.discriminator, "ndf"),
    ):
        if width in {p.name for p in registry.get(kind, section.name).parameters()}:
            sets += ["--set", f"{kind}.{width}=4"]
    return sets


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_check_accepts_every_shipped_recipe(capsys, path: Path) -> None:
    assert main(["check", str(path)]) == 0
    assert f"{path} is a valid recipe" in capsys.readouterr().err


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_show_builds_every_shipped_recipe(capsys, path: Path) -> None:
    assert main(["show", str(path), *narrow(path)]) == 0
    out = capsys.readouterr().out
    assert "discriminator" in out and "receptive field" in out


def test_show_spade_at_crop_64(capsys) -> None:
    path = next(p for p in RECIPES if p.stem == "spade_labels")
    args = ["--set", "data.crop_size=64", "--set", "data.load_size=64"]
    assert main(["show", str(path), *narrow(path), *args]) == 0
    assert "at 64x64" in capsys.readouterr().out
