"""One owner per shared contract (issue 21 §5): a run's file layout is spelled in
ganzoo/run_dir.py only, "did you mean" and the device choice have one helper each, and the
ablation modules import each other without a circle. Read from the source (AST), so nothing
here trains."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from ganzoo.device import resolve_device
from ganzoo.errors import GanzooError, did_you_mean
from ganzoo.run_dir import RunDir

PACKAGE = Path(__file__).resolve().parents[1] / "ganzoo"

#: The names of a run directory's files and folders (ganzoo/run_dir.py's layout).
LAYOUT = {
    "recipe.yaml",
    "metrics.jsonl",
    "samples",
    "checkpoints",
    "eval",
    "export",
    ".lock",
    "environment.json",
    "loggers.json",
}
#: ``folder / "name"`` that is not a run directory: the torch hub cache, the Hub folder.
NOT_A_RUN = {
    ("scoring/fid.py", "checkpoints"),
    ("nn/torchvision_weights.py", "checkpoints"),
    ("artifacts/hub.py", "recipe.yaml"),
}


def _sources() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_run_layout_is_spelled_in_run_dir_only() -> None:
    found = []
    for name, tree in _sources():
        if name == "run_dir.py":
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
                continue
            right = node.right
            if isinstance(right, ast.Constant) and right.value in LAYOUT:
                if (name, right.value) not in NOT_A_RUN:
                    found.append(f"{name}:{node.lineno} / {right.value!r}")
    assert not found, f"use RunDir's properties instead: {found}"


def test_ablation_modules_import_no_circle() -> None:
    graph: dict[str, set[str]] = {}
    for name, tree in _sources():
        if not name.startswith("ablation/"):
            continue
        here = "ganzoo." + name[:-3].replace("/", ".")
        graph[here] = {
            node.module
            for node in ast.walk(tree)  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ganzoo.")
        }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    circles = sorted(m for m in graph if not m.endswith("__init__") and reaches(m, m, {m}))
    assert not circles, f"modules in an import circle: {circles}"


def test_did_you_mean_names_the_closest() -> None:
    assert did_you_mean("unet_265", ["unet_256", "resnet_9blocks"]) == "did you mean 'unet_256'?"
    two = did_you_mean("unet_265", ["unet_256", "unet_128", "spade"], n=3, cutoff=0.5)
    assert two == "did you mean 'unet_256' or 'unet_128'?"
    assert did_you_mean("zzz", ["unet_256"]) == ""


def test_one_device_resolver() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(GanzooError, match="unknown device 'tpu'; use auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(GanzooError, match="train.device 'cuda' asked for but no CUDA"):
            resolve_device("cuda", setting="train.device")
    else:
        assert resolve_device("cuda", index=0) == torch.device("cuda", 0)


def test_run_dir_names_every_file_of_a_run(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    paths = [run.recipe_path, run.metrics_path, run.environment_path, run.loggers_path]
    assert [p.name for p in paths] == [
        "recipe.yaml",
        "metrics.jsonl",
        "environment.json",
        "loggers.json",
    ]
    assert [run.samples.name, run.checkpoints.name, run.eval_dir.name, run.export_dir.name] == [
        "samples",
        "checkpoints",
        "eval",
        "export",
    ]
