"""``ganzoo demo`` in a real browser: the page served on a free 127.0.0.1 port, driven in
headless Chromium (Debian's ``chromium`` + ``chromium-driver``, through selenium; no browser
download) as a person uses it: strokes on the pad, a painted label region, an uploaded file,
and the exported folder started with ``python app.py``.

Skips, with the reason, without gradio / selenium (``pip install -e '.[dev]'``) or without a
system Chromium and its driver (``make browser``: apt-get, where the machine allows it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_demo import LABELS, SKETCH, tiny_model

pytest.importorskip("gradio", reason="needs gradio: pip install 'ganzoo[demo]'")
pytest.importorskip("selenium", reason="needs selenium: pip install -e '.[dev]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ganzoo.demo import DemoModel  # noqa: E402
from ganzoo.demo.export import export_demo  # noqa: E402
from ganzoo.demo.page import build_page, launch  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "needs Debian's chromium and chromium-driver (`make browser`); not installed here",
        allow_module_level=True,
    )

WAIT = 60  # seconds a page may take to answer on a busy 2-core machine (not a threshold)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1000"):
        options.add_argument(arg)
    options.add_argument("--enable-unsafe-swiftshader")  # the canvas' WebGL, in software
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def models(tiny_data: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("browser_models")
    return {
        "sketch": tiny_model(tiny_data, root / "sketch", *SKETCH),
        "labels": tiny_model(tiny_data, root / "labels", *LABELS),
    }


def serve(source: Path) -> tuple[object, str]:
    page = build_page(DemoModel(source, device="cpu"))
    return page, launch(page, port=free_port())


def open_page(browser: webdriver.Chrome, url: str) -> None:
    browser.get_log("browser")  # what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#editor canvas"))


def output_src(browser: webdriver.Chrome) -> str | None:
    found = browser.find_elements(By.CSS_SELECTOR, "#output img")
    return found[0].get_attribute("src") if found else None


def next_output(browser: webdriver.Chrome, before: str | None) -> Image.Image:
    """Wait for the output image to change from ``before``; decode it."""
    WebDriverWait(browser, WAIT).until(lambda b: output_src(b) not in (None, before))
    with urllib.request.urlopen(output_src(browser), timeout=WAIT) as response:
        return Image.open(BytesIO(response.read())).convert("RGB")


def stroke(browser: webdriver.Chrome, path: list[tuple[int, int]]) -> None:
    """Press, move along ``path`` (offsets from the canvas' centre, in screen pixels), release."""
    pad = browser.find_elements(By.CSS_SELECTOR, "#editor canvas")[-1]
    chain = ActionChains(browser).move_to_element_with_offset(pad, *path[0]).click_and_hold()
    x, y = path[0]
    for nx, ny in path[1:]:
        chain = chain.move_by_offset(nx - x, ny - y)
        x, y = nx, ny
    chain.release().perform()


def console_errors(browser: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def status(browser: webdriver.Chrome) -> str:
    return browser.find_element(By.ID, "status").text


def test_strokes_on_the_sketch_pad_give_outputs_that_follow_them(browser, models) -> None:
    page, url = serve(models["sketch"])
    try:
        open_page(browser, url)
        stroke(browser, [(-60, -60), (20, -20), (40, 60)])
        first = next_output(browser, None)
        assert first.size == (32, 32), status(browser)
        stroke(browser, [(60, -80), (-40, 40), (-90, 90)])
        second = next_output(browser, output_src(browser))
        assert second.size == (32, 32)
        assert not np.array_equal(np.asarray(first), np.asarray(second))
        assert "32x32 output in" in status(browser)
        assert console_errors(browser) == []
    finally:
        page.close()


def test_painted_labels_and_uploads_answer_and_bad_files_say_so(
    browser, models, tmp_path: Path
) -> None:
    page, url = serve(models["labels"])
    try:
        open_page(browser, url)
        stroke(browser, [(-80, -80), (80, -80), (80, 80), (-80, 80)])
        painted = next_output(browser, None)
        assert painted.size == (32, 32), status(browser)
        ids = tmp_path / "ids.png"
        Image.fromarray(
            np.kron(np.arange(4).reshape(2, 2), np.ones((16, 16))).astype(np.uint8)
        ).save(ids)
        upload = browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
        upload.send_keys(str(ids))
        uploaded = next_output(browser, output_src(browser))
        assert uploaded.size == (32, 32)
        assert not np.array_equal(np.asarray(painted), np.asarray(uploaded))
        bad = tmp_path / "colour.png"
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bad)
        browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(bad))
        WebDriverWait(browser, WAIT).until(lambda b: "error" in status(b))
        assert "a label map has 1" in status(browser) and "\n" not in status(browser)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
        assert console_errors(browser) == []
    finally:
        page.close()


def test_the_exported_folder_starts_and_answers_the_same_way(
    browser, models, tmp_path: Path
) -> None:
    folder = export_demo(models["sketch"], tmp_path / "space")
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    app = subprocess.Popen(
        [sys.executable, "app.py"], cwd=folder, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert app.poll() is None, "app.py exited"
            time.sleep(0.2)
        open_page(browser, f"http://127.0.0.1:{port}/")
        stroke(browser, [(-60, -60), (20, -20), (40, 60)])
        out = next_output(browser, None)
        assert out.size == (32, 32), status(browser)
        assert console_errors(browser) == []
    finally:
        app.terminate()
        app.wait(timeout=30)
