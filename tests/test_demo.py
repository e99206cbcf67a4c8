"""``ganzoo demo`` without a browser: input conversion, the page's answers (and its one-line
errors), the newest quickstart run, the exported folder, the Space push and the missing extra.
The page in a real browser is tests/test_demo_browser.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo.cli import main
from ganzoo.demo import DemoModel, input_kind, newest_quickstart
from ganzoo.demo.inputs import colours_to_ids, label_palette
from ganzoo.errors import GanzooError


def test_input_kind_follows_the_recipe(demo_models: dict[str, Path]) -> None:
    for kind, path in demo_models.items():
        model = DemoModel(path, device="cpu")
        assert model.kind == kind == input_kind(model.recipe)
        assert model.size == (32, 32)


def test_label_palette_is_distinct_and_painted_colours_map_back_to_ids() -> None:
    palette = label_palette(151)
    assert len({tuple(c) for c in palette}) == 151 and tuple(palette[0]) == (0, 0, 0)
    ids = np.arange(12).reshape(3, 4) % 5
    rgb = palette[ids]
    rgb[0, 0] = (palette[3].astype(int) * 0.8).astype(np.uint8)  # an anti-aliased edge
    out = colours_to_ids(rgb, palette[:5])
    assert out[0, 0] == 3 and np.array_equal(out.ravel()[1:], ids.ravel()[1:])


def canvas(value: np.ndarray) -> dict:
    return {"background": None, "layers": [], "composite": value}


@pytest.mark.parametrize("kind", ["sketch", "labels", "image"])
def test_the_page_answers_a_canvas_at_the_model_size_and_follows_it(
    demo_models: dict[str, Path], kind: str
) -> None:
    from ganzoo.demo.page import _answer

    model = DemoModel(demo_models[kind], device="cpu")
    white = np.full((32, 32, 3), 255, np.uint8)
    if kind == "labels":
        white[:] = label_palette(4)[0]
    drawn = white.copy()
    drawn[8:24, 10:14] = label_palette(4)[2] if kind == "labels" else 0
    outs = []
    for picture in (white, drawn):
        out, status = _answer(model, "canvas", canvas(picture), "pad", "auto", True)
        assert out is not None, status
        assert out.shape[:2] == (32, 32) and out.dtype == np.uint8
        assert status.startswith("32x32 output of the canvas in ")
        outs.append(out)
    assert not np.array_equal(*outs)
    big = np.full((50, 40, 3), 255, np.uint8)  # resize: the training size; pad: its own
    assert _answer(model, "canvas", canvas(big), "resize", "eval", True)[0].shape[:2] == (32, 32)
    assert _answer(model, "canvas", canvas(big), "pad", "train", True)[0].shape[:2] == (50, 40)


def test_bad_inputs_get_one_line_in_the_page(demo_models: dict[str, Path], tmp_path: Path) -> None:
    from ganzoo.demo.page import _answer

    labels = DemoModel(demo_models["labels"], device="cpu")
    rgb = tmp_path / "colour.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(rgb)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really")
    ids = tmp_path / "ids.png"
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(ids)  # class 9 of 4
    image = DemoModel(demo_models["image"], device="cpu")
    image_model = image.translator(True, "auto")
    image_model.max_pixels = 64 * 64
    huge = np.full((200, 200, 3), 255, np.uint8)
    cases = [
        (labels, "file", str(rgb), "3 channel(s), but a label map has 1"),
        (labels, "file", str(broken), "broken.png"),
        (labels, "file", str(ids), "class id 9 is not below data.labels.num_classes 4"),
        (image, "canvas", canvas(huge), "more than the 4,096 allowed"),
        (image, "canvas", {"composite": None}, "draw, paint or upload"),
    ]
    for model, source, value, expected in cases:
        out, status = _answer(model, source, value, "pad", "auto", True)
        assert out is None and expected in status and "\n" not in status, status
    good = tmp_path / "good.png"
    Image.fromarray(np.full((32, 32), 2, np.uint8)).save(good)
    out, status = _answer(labels, "file", str(good), "pad", "auto", True)  # still serving
    assert out.shape[:2] == (32, 32), status


def test_no_source_means_the_newest_quickstart_run(tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="make quickstart"):
        newest_quickstart(tmp_path / "runs")
    for name in ("quickstart-20260101-000000", "quickstart-20260301-000000"):
        (tmp_path / "runs" / name / "checkpoints").mkdir(parents=True)
        (tmp_path / "runs" / name / "checkpoints" / "step_00000001.pt").write_bytes(b"x")
    (tmp_path / "runs" / "quickstart-20260401-000000").mkdir()  # no checkpoint yet
    assert newest_quickstart(tmp_path / "runs").name == "quickstart-20260301-000000"


def test_demo_without_gradio_says_the_pip_command(
    demo_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)
    for args in (
        ["demo", str(demo_models["image"])],
        ["demo", str(demo_models["image"]), "--export", "x"],
    ):
        assert main([*args[:2], *args[2:]]) == 2
        err = capsys.readouterr().err
        assert "pip install 'ganzoo[demo]'" in err and err.count("\n") == 1
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 2
    assert "make quickstart" in capsys.readouterr().err


needs_gradio = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None, reason="needs gradio: pip install 'ganzoo[demo]'"
)


@needs_gradio
def test_export_writes_a_self_contained_folder(
    demo_models: dict[str, Path], tmp_path: Path, capsys
) -> None:
    out = tmp_path / "space"
    assert main(["demo", str(demo_models["labels"]), "--export", str(out)]) == 0
    assert "python app.py" in capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert {"app.py", "requirements.txt", "model.safetensors", "recipe.yaml", "README.md"} <= names
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\ntitle: ") and "sdk: gradio" in readme
    assert "app_file: app.py" in readme and "library_name" not in readme
    assert "ganzoo[demo]" in (out / "requirements.txt").read_text()
    assert "kind='labels'" in (out / "app.py").read_text()
    again = DemoModel(out, device="cpu")  # the folder is the model
    x = torch.zeros(4, 32, 32)
    x[1] = 1
    y = DemoModel(demo_models["labels"], device="cpu").translator(False, "auto").forward(x)
    assert torch.equal(again.translator(False, "auto").forward(x), y)
    assert main(["demo", str(demo_models["labels"]), "--export", str(out)]) == 2  # not empty


@needs_gradio
def test_push_space_uploads_the_demo_folder(
    demo_models: dict[str, Path], hub_server, capsys
) -> None:
    pytest.importorskip("huggingface_hub")
    assert main(["push", str(demo_models["sketch"]), "someone/sketch-demo", "--space"]) == 0
    assert "pushed the demo to the Space someone/sketch-demo" in capsys.readouterr().out
    stored = hub_server.repos["someone/sketch-demo"]
    assert {"app.py", "requirements.txt", "model.safetensors", "README.md"} <= set(stored)
    created = hub_server.created["someone/sketch-demo"]
    assert created.get("type") == "space" and created.get("sdk") == "gradio"
    assert any(path.startswith("/api/spaces/") for _, path in hub_server.calls)
