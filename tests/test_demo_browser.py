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

pytest.importorskip("gradio", reason="needs gradio: pip install 'ganzoo[demo]'")
pytest.importorskip("selenium", reason="needs selenium: pip install -e '.[dev]'")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
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


def serve(source: Path) -> tuple[object, str]:
    page = build_page(DemoModel(source, device="cpu"))
    return page, launch(page, port=free_port())


def open_page(browser: webdriver.Chrome, url: str) -> None:
    browser.get("about:blank")  # leave the previous page (its requests end here)
    browser.get_log("browser")  # and drop what it logged
    browser.get(url)
    WebDriverWait(browser, WAIT).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#editor canvas"))


def output_src(browser: webdriver.Chrome) -> str | None:
    found = browser.find_elements(By.CSS_SELECTOR, "#output img")
    return found[0].get_attribute("src") if found else None


def decoded(url: str) -> np.ndarray:
    with urllib.request.urlopen(url, timeout=WAIT) as response:
        return np.asarray(Image.open(BytesIO(response.read())).convert("RGB"))


def output_for(
    browser: webdriver.Chrome, what: str, before: str | None, unlike: np.ndarray | None = None
) -> np.ndarray:
    """The decoded output once the status says it is the output of ``what`` ("the canvas" or
    a file's name) and the image is no longer ``before`` (its URL before the action), and,
    with ``unlike``, once it differs from that earlier output (a stroke may be answered more
    than once while it is drawn)."""

    def ready(b: webdriver.Chrome) -> tuple[np.ndarray] | None:  # WebDriverWait tests truth
        src = output_src(b)
        if src in (None, before) or f"output of {what} " not in status(b):
            return None
        out = decoded(src)
        return None if unlike is not None and np.array_equal(out, unlike) else (out,)

    try:
        return WebDriverWait(browser, WAIT).until(ready)[0]
    except TimeoutException:
        raise AssertionError(f"no output of {what}; the page says: {status(browser)}") from None


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


def test_strokes_on_the_sketch_pad_give_outputs_that_follow_them(
    browser, demo_models, tmp_path: Path
) -> None:
    page, url = serve(demo_models["sketch"])
    try:
        open_page(browser, url)
        before = output_src(browser)
        stroke(browser, [(-60, -60), (20, -20), (40, 60)])
        first = output_for(browser, "the canvas", before)
        assert first.shape == (32, 32, 3), status(browser)
        before = output_src(browser)
        stroke(browser, [(60, -80), (-40, 40), (-90, 90)])
        second = output_for(browser, "the canvas", before, unlike=first)  # fails if never unlike
        assert second.shape == (32, 32, 3)
        photo = tmp_path / "photo.png"  # a picture uploaded into the editor itself
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)).save(
            photo
        )
        before = output_src(browser)
        browser.find_element(By.CSS_SELECTOR, "#editor input[type=file]").send_keys(str(photo))
        assert output_for(browser, "the canvas", before, unlike=second).shape == (32, 32, 3)
        assert "32x32 output of the canvas in" in status(browser)
        assert console_errors(browser) == []
    finally:
        page.close()


def test_painted_labels_and_uploads_answer_and_bad_files_say_so(
    browser, demo_models, tmp_path: Path
) -> None:
    page, url = serve(demo_models["labels"])
    try:
        open_page(browser, url)
        # the empty canvas (class 0) is answered on load; uploads come once it is (a canvas
        # answered later would replace theirs: the page shows the newest answer)
        blank = output_for(browser, "the canvas", None)
        ids = tmp_path / "ids.png"
        Image.fromarray(
            np.kron(np.arange(4).reshape(2, 2), np.ones((16, 16))).astype(np.uint8)
        ).save(ids)
        before = output_src(browser)
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(ids))
        uploaded = output_for(browser, "ids.png", before)
        assert uploaded.shape == (32, 32, 3)
        assert not np.array_equal(blank, uploaded)
        bad = tmp_path / "colour.png"
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bad)
        browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label='Clear']").click()
        WebDriverWait(browser, WAIT).until(  # the upload area is back (not the cleared one)
            lambda b: (
                "ids.png" not in b.find_element(By.ID, "upload").text
                and b.find_elements(By.CSS_SELECTOR, "#upload input[type=file]")
            )
        )
        browser.find_element(By.CSS_SELECTOR, "#upload input[type=file]").send_keys(str(bad))
        WebDriverWait(browser, WAIT).until(lambda b: "error" in status(b))
        assert "a label map has 1" in status(browser) and "\n" not in status(browser)
        assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
        before = output_src(browser)  # class 1 painted over class 0: the server still answers
        stroke(browser, [(-80, -80), (80, -80), (80, 80), (-80, 80)])
        painted = output_for(browser, "the canvas", before, unlike=blank)
        assert painted.shape == (32, 32, 3)
        assert console_errors(browser) == []
    finally:
        page.close()


def test_the_exported_folder_starts_and_answers_the_same_way(
    browser, demo_models, tmp_path: Path
) -> None:
    folder = export_demo(demo_models["sketch"], tmp_path / "space")
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
        before = output_src(browser)
        stroke(browser, [(-60, -60), (20, -20), (40, 60)])
        out = output_for(browser, "the canvas", before)
        assert out.shape == (32, 32, 3), status(browser)
        assert console_errors(browser) == []
    finally:
        app.terminate()
        app.wait(timeout=30)
