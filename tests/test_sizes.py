"""Small files declaring huge images: every format's size is read from its header and bounded
before anything is decoded (one-line DataError, skipped by ``data.skip_corrupt``), and
``translate`` / ``ganzoo.load`` refuse an image too large for the generator in one line.

Every hostile file is a few hundred bytes to a few KiB, made here.
"""

from __future__ import annotations

import struct
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from conftest import tiny_recipe
from PIL import Image

from ganzoo.build import build_generator
from ganzoo.data import build_dataset
from ganzoo.data.dataset import DataWarning
from ganzoo.data.formats import ReadOptions, read_image, read_size
from ganzoo.errors import DataError, GanzooError, SizeError
from ganzoo.recipe import MAX_PIXELS


def png(path: Path, width: int, height: int, depth: int = 8, colour: int = 2) -> Path:
    """A PNG whose IHDR declares ``width`` x ``height`` but holds 1 KiB of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def tiff(path: Path, side: int) -> Path:
    """A 16x16 TIFF whose ImageWidth / ImageLength tags are rewritten to ``side``."""
    tifffile.imwrite(path, np.zeros((16, 16), np.uint8))
    with tifffile.TiffFile(path) as tif:
        order = tif.byteorder
        tags = tif.pages[0].tags
        spots = [(tags[n].valueoffset, int(tags[n].dtype)) for n in ("ImageWidth", "ImageLength")]
    data = bytearray(path.read_bytes())
    for offset, dtype in spots:
        struct.pack_into(order + {3: "H", 4: "I"}[dtype], data, offset, side)
    path.write_bytes(bytes(data))
    return path


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """Only the NumPy header of an array of ``shape``, and 64 bytes of data."""
    import io

    buffer = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + b"\0" * 64


def npz(path: Path, shape: tuple[int, ...]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", npy_header(shape))
    return path


def npy(path: Path, shape: tuple[int, ...]) -> Path:
    path.write_bytes(npy_header(shape))  # 228 bytes asking for 112 GiB
    return path


HOSTILE = {
    "tiff_60000": lambda d: tiff(d / "a.tif", 60000),
    "npy_header": lambda d: npy(d / "a.npy", (100_000, 100_000, 3)),
    "npz_member": lambda d: npz(d / "a.npz", (60_000, 60_000, 3)),
    "png16_30000": lambda d: png(d / "a.png", 30000, 30000, depth=16, colour=6),
    "png8_13000": lambda d: png(d / "a.png", 13000, 13000),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(
    tmp_path: Path, case: str, caplog
) -> None:
    path = HOSTILE[case](tmp_path)
    assert path.stat().st_size < 64 * 1024
    for read in (read_size, read_image):
        t0 = time.monotonic()
        with pytest.raises(DataError) as err:
            read(path)
        message = str(err.value)
        assert "\n" not in message and "its header declares" in message
        assert f"more than data.max_pixels ({MAX_PIXELS:,} pixels)" in message
        assert time.monotonic() - t0 < 5  # nothing decoded (a MemoryError or minutes before)
    assert not [r for r in caplog.records if r.name == "tifffile"]  # the one line is all


def test_the_bound_is_configurable_and_counts_tiff_pages_and_array_channels(
    tmp_path: Path,
) -> None:
    small = ReadOptions(max_pixels=100)
    image = tmp_path / "x.png"
    Image.new("RGB", (11, 10)).save(image)
    assert read_size(image, ReadOptions(max_pixels=110)) == (10, 11)
    with pytest.raises(DataError, match="10x11 image"):
        read_image(image, options=small)
    # 200 channels of 8x8 float32 = 51,200 bytes: above 100 pixels x 16 bytes, though 64 pixels
    np.save(tmp_path / "deep.npy", np.zeros((8, 8, 200), np.float32))
    with pytest.raises(DataError, match="8x8 image"):
        read_size(tmp_path / "deep.npy", small)
    tifffile.imwrite(tmp_path / "pages.tif", np.zeros((200, 8, 8), np.float32))
    with pytest.raises(DataError, match="8x8 image"):
        read_size(tmp_path / "pages.tif", small)
    assert read_size(tmp_path / "pages.tif") == (8, 8)


def test_an_npz_size_is_read_without_decompressing_the_array(tmp_path: Path, monkeypatch) -> None:
    np.savez_compressed(tmp_path / "x.npz", x=np.zeros((40, 30, 3), np.uint8))

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the whole array was decompressed")

    monkeypatch.setattr(np.lib.format, "read_array", refuse)
    assert read_size(tmp_path / "x.npz") == (40, 30)


def _split_with(root: Path, hostile: str) -> None:
    """ROOT/train: three readable 32x64 A|B PNGs and one hostile file."""
    train = root / "train"
    train.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (64, 32), (i * 60, 0, 0)).save(train / f"{i}.png")
    HOSTILE[hostile](train)


@pytest.mark.parametrize("case", ["tiff_60000", "npy_header", "png16_30000"])
@pytest.mark.parametrize("cache", [True, False])
def test_skip_corrupt_skips_a_file_declaring_a_huge_image(
    tmp_path: Path, case: str, cache: bool
) -> None:
    _split_with(tmp_path, case)
    data = tiny_recipe(tmp_path, f"data.cache={cache}").data
    with pytest.raises(DataError, match="its header declares"):
        build_dataset(data, "train")
    skipping = data.model_copy(update={"skip_corrupt": True})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = build_dataset(skipping, "train")
    assert len(dataset) == 3 and dataset[0]["A"].shape == (3, 32, 32)
    assert any(issubclass(w.category, DataWarning) for w in caught)


def test_data_max_pixels_is_the_recipe_setting(tmp_path: Path) -> None:
    _split_with(tmp_path, "png8_13000")
    with pytest.raises(DataError, match=r"more than data.max_pixels \(1,000 pixels\)"):
        build_dataset(tiny_recipe(tmp_path, "data.max_pixels=1000").data, "train")


@pytest.fixture(scope="module")
def generator(tiny_data: Path) -> tuple[torch.nn.Module, object]:
    recipe = tiny_recipe(tiny_data)
    return build_generator(recipe).eval(), recipe


def test_translate_refuses_an_image_too_large_for_the_generator(generator, tmp_path: Path) -> None:
    from ganzoo.evaluation.translate import translate_files

    net, recipe = generator
    big = png(tmp_path / "big.png", 13000, 13000)  # 164 KB in the probe; within PIL's bound
    with pytest.raises(DataError) as err:
        translate_files(net, recipe, [big], tmp_path / "out")
    assert "its header declares a 13000x13000 image" in str(err.value)
    assert "--max-pixels" in str(err.value) and "\n" not in str(err.value)
    # a real image above --max-pixels: refused before G runs, with what to do
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48)).save(photo)
    with pytest.raises(
        SizeError, match=r"would run on 64x64 pixels \(4,096\), more than the 1,000"
    ):
        translate_files(net, recipe, [photo], tmp_path / "out", max_pixels=1000)
    assert not list((tmp_path / "out").iterdir())
    done = translate_files(net, recipe, [photo], tmp_path / "out", max_pixels=4096)
    assert len(done.outputs) == 1


def test_a_loaded_model_refuses_an_image_too_large_for_it(generator) -> None:
    from ganzoo.api import Translator
    from ganzoo.artifacts.schema import GeneratorInfo

    net, recipe = generator
    model = Translator(net, recipe, GeneratorInfo(Path("g"), "checkpoint", None, False))
    model.max_pixels = 32 * 32
    assert model(torch.zeros(3, 32, 32)).shape == (3, 32, 32)
    with pytest.raises(GanzooError, match="the image: the generator would run on 64x64"):
        model(np.zeros((64, 40, 3), np.uint8))


def test_cli_translate_max_pixels_is_one_line(generator, tmp_path: Path, capsys) -> None:
    from ganzoo.artifacts.safetensors import save_safetensors
    from ganzoo.artifacts.schema import GeneratorInfo
    from ganzoo.cli import main

    net, recipe = generator
    model = tmp_path / "g.safetensors"
    save_safetensors(net, recipe, GeneratorInfo(model, "safetensors", 0, False), model)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48)).save(photo)
    args = ["translate", str(model), "-i", str(photo), "-o", str(tmp_path / "out")]
    assert main([*args, "--max-pixels", "1000", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "would run on 64x64 pixels" in err and "--max-pixels" in err and "\n" not in err
    assert main([*args, "--device", "cpu"]) == 0
