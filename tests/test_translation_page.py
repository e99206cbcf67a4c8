"""`ganzoo translate --page`: the browsable input | output | target page that users of
pix2pix's test.py know, built with the report's page code."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny_run
from PIL import Image

from ganzoo.cli import main


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_data, tmp_path_factory.mktemp("page"))


def test_translate_page_shows_input_output_target(
    run: Path, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    args = ["translate", str(run), "-i", str(tiny_data / "val"), "-o", str(out), "--page"]
    assert main([*args, "--device", "cpu"]) == 0
    assert f"wrote {out / 'index.html'}" in capsys.readouterr().out
    html = (out / "index.html").read_text()
    assert html.count("<figure") == 4 and html.count("(input | output | target)</figcaption>") == 4
    assert "0.png -&gt; 0.png" in html and "http" not in html.split("<body>")[1]
    first = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    row = np.asarray(Image.open(io.BytesIO(base64.b64decode(first))))
    assert row.shape[0] == 32 + 4 and row.shape[1] == 3 * 32 + 4 * 2  # 3 columns, padding 2


def test_plain_inputs_give_input_and_output(run: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "in").mkdir()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(tmp_path / "in" / "red.png")
    out = tmp_path / "out"
    args = ["translate", str(run), "-i", str(tmp_path / "in"), "-o", str(out), "--page"]
    assert main([*args, "--device", "cpu"]) == 0
    html = (out / "index.html").read_text()
    assert "red.png -&gt; red.png (input | output)" in html
