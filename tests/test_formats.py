"""Images of any depth and channel count: formats, value ranges, label maps, the packed store.

All data is synthetic, written here with PIL, imagecodecs, tifffile and numpy.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from ganzoo.data import build_dataset
from ganzoo.data.formats import read_image, read_size, write_image
from ganzoo.data.labels import LabelMaps, instance_edges
from ganzoo.data.ranges import SideRange
from ganzoo.data.store import PackedImages
from ganzoo.data.transforms import resize
from ganzoo.errors import DataError, RecipeError
from ganzoo.recipe import DataSection, from_dict, load_recipe

ROOT = Path(__file__).resolve().parents[1]


def ramp(h: int, w: int, c: int, dtype: str, seed: int = 0) -> np.ndarray:
    """(H, W, C) values spread over the dtype (floats: [0, 1]), many distinct values."""
    rng = np.random.default_rng(seed)
    unit = rng.random((h, w, c))
    if np.dtype(dtype).kind == "f":
        return unit.astype(dtype)
    top = {"uint8": 255, "uint16": 65535, "int32": 100_000, "uint32": 4_000_000}[dtype]
    return np.round(unit * top).astype(dtype)


# -- reading: one round trip per format ---------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("depth", ["uint8", "uint16"])
def test_png_round_trip(tmp_path: Path, channels: int, depth: str) -> None:
    hwc = ramp(6, 5, channels, depth)
    path = tmp_path / "x.png"
    write_image(path, hwc.transpose(2, 0, 1))
    got = read_image(path, channels)
    assert got.dtype == np.dtype(depth) and got.shape == (channels, 6, 5)
    np.testing.assert_array_equal(got, hwc.transpose(2, 0, 1))
    assert read_size(path) == (6, 5)


def test_16_bit_rgb_png_keeps_16_bits_where_pil_would_not(tmp_path: Path) -> None:
    hwc = ramp(16, 16, 3, "uint16")
    path = tmp_path / "x.png"
    path.write_bytes(imagecodecs.png_encode(hwc))
    with Image.open(path) as img:
        assert img.mode == "RGB"  # PIL narrows it to 8 bits
    got = read_image(path, 3)
    assert len(np.unique(got)) > 256
    np.testing.assert_array_equal(got, hwc.transpose(2, 0, 1))


def test_8_bit_photos_convert_between_grey_and_rgb_as_before(tmp_path: Path) -> None:
    rgb = ramp(4, 4, 3, "uint8")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", 1)[0], luma)
    Image.fromarray(rgb).save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg", 3).shape == (3, 4, 4)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "uint32", "float32", "float64"])
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_tiff_round_trip(tmp_path: Path, dtype: str, channels: int) -> None:
    chw = ramp(7, 6, channels, dtype).transpose(2, 0, 1)
    path = tmp_path / "x.tif"
    tifffile.imwrite(path, chw[0] if channels == 1 else chw, photometric="minisblack")
    got = read_image(path)
    assert got.shape == (channels, 7, 6) and read_size(path) == (7, 6)
    np.testing.assert_array_equal(got, chw.astype(got.dtype))
    expected = {"uint32": "int64", "float64": "float32"}.get(dtype, dtype)
    assert got.dtype == np.dtype(expected)


def test_tiff_samples_and_pages_are_channels(tmp_path: Path) -> None:
    hwc = ramp(5, 4, 4, "uint16")
    tifffile.imwrite(tmp_path / "rgba.tif", hwc, photometric="rgb")  # one page, 4 samples
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.tif"), hwc.transpose(2, 0, 1))
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
        for c in range(3):
            tif.write(hwc[..., c], photometric="minisblack")
    got = read_image(tmp_path / "pages.tif")
    np.testing.assert_array_equal(got, hwc[..., :3].transpose(2, 0, 1))


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_npy_and_npz_round_trip(tmp_path: Path, layout: str) -> None:
    from ganzoo.data.formats import ReadOptions

    chw = ramp(6, 5, 3, "float32").transpose(2, 0, 1)
    stored = chw if layout == "chw" else chw.transpose(1, 2, 0)
    np.save(tmp_path / "x.npy", stored)
    np.savez(tmp_path / "one.npz", image=stored)
    np.savez(tmp_path / "two.npz", image=stored, mask=stored[..., :1])
    options = ReadOptions(layout)
    for name in ("x.npy", "one.npz"):
        np.testing.assert_array_equal(read_image(tmp_path / name, options=options), chw)
        assert read_size(tmp_path / name, options) == (6, 5)
    keyed = ReadOptions(layout, "image")
    np.testing.assert_array_equal(read_image(tmp_path / "two.npz", options=keyed), chw)
    np.save(tmp_path / "flat.npy", chw[0])
    assert read_image(tmp_path / "flat.npy").shape == (1, 6, 5)


# -- reading errors: one line naming the file ---------------------------------------------------
def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_npz_errors(tmp_path: Path) -> None:
    from ganzoo.data.formats import ReadOptions

    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2)), b=np.zeros((2, 2)))
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "two.npz")
    assert "two.npz: holds 2 arrays (a, b); set data.npz_key" in one_line(info)
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "two.npz", options=ReadOptions("hwc", "c"))
    assert "no array 'c' (it holds a, b)" in one_line(info)
    np.save(tmp_path / "bad.npy", np.zeros((2, 2, 2, 2)))
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "bad.npy")
    assert "bad.npy: an array of shape (2, 2, 2, 2)" in one_line(info)


def test_a_corrupt_tiff_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "x.tif")
    assert "x.tif: cannot read image" in one_line(info)


# -- value ranges ------------------------------------------------------------------------------
def test_dtype_ranges_map_to_minus_one_one() -> None:
    for dtype, top in (("uint8", 255), ("uint16", 65535)):
        x = np.array([0, top // 2, top], dtype).reshape(1, 1, 3)
        y = SideRange("A").to_unit(x, "x")
        np.testing.assert_allclose(y[0, 0], [-1, (top // 2) / top * 2 - 1, 1], atol=1e-6)
        back = SideRange("B").from_unit(y, np.dtype(dtype), "x")
        np.testing.assert_array_equal(back, x)


def test_float_and_32_bit_need_a_declared_range() -> None:
    for dtype in ("float32", "int32"):
        with pytest.raises(DataError) as info:
            SideRange("B").to_unit(np.zeros((1, 2, 2), dtype), "f.tif")
        assert f"f.tif: {dtype} values have no implied range" in one_line(info)


def test_declared_range_per_side_and_per_channel() -> None:
    x = np.array([[[0, 4095]], [[-1, 1]]], np.float32)  # (2, 1, 2)
    side = SideRange("A", [(0, 4095), (-1, 1)])
    np.testing.assert_allclose(side.to_unit(x, "x"), [[[-1, 1]], [[-1, 1]]], atol=1e-6)
    twelve = SideRange("B", (0, 4095))
    y = twelve.to_unit(np.array([[[0, 4095, 2048]]], np.uint16), "x")
    np.testing.assert_allclose(y, [[[-1, 1, 2048 / 4095 * 2 - 1]]], atol=1e-6)
    np.testing.assert_array_equal(twelve.from_unit(y, np.dtype("uint16"), "x"), [[[0, 4095, 2048]]])
    with pytest.raises(DataError) as info:
        side.to_unit(np.zeros((3, 1, 1), np.float32), "three.npy")
    assert "data.range.A gives 2 [lo, hi] pairs but the image has 3 channels" in one_line(info)


def test_outside_the_range_is_an_error_unless_clip() -> None:
    x = np.array([[[0.5, 1.25]], [[0.0, 0.0]]], np.float32)
    with pytest.raises(DataError) as info:
        SideRange("B", (0, 1)).check(x, "v.npy")
    assert "v.npy: value 1.25 in channel 0 is outside data.range.B [0, 1]" in one_line(info)
    SideRange("B", (0, 1), clip=True).check(x, "v.npy")
    assert SideRange("B", (0, 1), clip=True).to_unit(x, "v.npy").max() == 1.0
    nan = np.full((1, 1, 1), np.nan, np.float32)
    for clip in (False, True):  # the NaN error used to advise data.clip, which refuses NaN too
        with pytest.raises(DataError) as info:
            SideRange("B", (0, 1), clip=clip).check(nan, "n.npy")
        assert "n.npy: holds NaN values" in one_line(info) and "clip: true" not in one_line(info)
        assert "numpy.nan_to_num" in one_line(info)


def test_a_range_no_integer_depth_holds_has_a_float_format(tmp_path: Path) -> None:
    """data.range.B [-1, 100] with integer inputs: png16, tiff and npy all answered "does not
    fit uint16; write another depth"; tiff32 / npy32 write it, and the error names them."""
    from ganzoo.evaluation.translate import save_image

    recipe = load_recipe(
        Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml",
        ["data.out_channels=1", "data.range={A: [0, 255], B: [-1, 100]}"],
    )
    image = torch.linspace(-1, 1, 16).reshape(1, 4, 4)
    for fmt in ("png16", "tiff", "npy"):
        with pytest.raises(DataError) as info:
            save_image(image, tmp_path / f"x.{fmt}", recipe, np.dtype(np.uint8), fmt)
        assert "does not fit" in one_line(info) and "--format tiff32 or npy32" in one_line(info)
    for fmt, ending in (("tiff32", "tif"), ("npy32", "npy")):
        save_image(image, tmp_path / f"x.{ending}", recipe, np.dtype(np.uint8), fmt)
        back = read_image(tmp_path / f"x.{ending}")
        assert back.dtype == np.float32
        assert back.min() == pytest.approx(-1) and back.max() == pytest.approx(100)


def test_range_recipe_validation(tmp_path: Path) -> None:
    def data(**kw) -> dict:
        return {"root": str(tmp_path), **kw}

    section = DataSection(**data(range={"A": [0, 4095], "B": [[0, 1], [0, 2]]}))
    assert section.range.A == (0, 4095) and section.range.B == [(0, 1), (0, 2)]
    tree = load_recipe(ROOT / "recipes" / "quickstart.yaml").to_dict()
    assert "range" not in tree["data"] and "labels" not in tree["data"]  # older readers
    tree["data"]["range"] = {"B": [1, 0]}
    with pytest.raises(RecipeError, match=r"needs hi > lo, got \[1, 0\]"):
        from_dict(tree)


# -- the packed store keeps each dtype -----------------------------------------------------------
def test_packed_store_keeps_dtypes() -> None:
    images = [
        torch.from_numpy(ramp(3, 5, 2, "uint16").transpose(2, 0, 1).copy()),
        torch.from_numpy(ramp(3, 3, 1, "uint8").transpose(2, 0, 1).copy()),
        torch.from_numpy(ramp(2, 3, 3, "float32").transpose(2, 0, 1).copy()),
    ]
    store = PackedImages([tuple(x.shape) for x in images], [x.dtype for x in images])
    for i, x in enumerate(images):
        store[i] = x
    for i, x in enumerate(images):
        assert store[i].dtype == x.dtype and torch.equal(store[i], x)


# -- datasets of deep, many-channel files --------------------------------------------------------
def write_deep_pairs(root: Path, n: int = 3, side: int = 20) -> list[tuple[np.ndarray, ...]]:
    """train/A/*.tif: 4-channel uint16; train/B/*.npy: 2-channel float in [0, 1] (HWC),
    B = a function of A so crops can be compared."""
    pairs = []
    for split in ("train", "val"):
        (root / split / "A").mkdir(parents=True)
        (root / split / "B").mkdir(parents=True)
        for i in range(n):
            a = ramp(side, side, 4, "uint16", seed=i)
            b = (a[..., :2].astype(np.float32) / 65535).astype(np.float32)
            tifffile.imwrite(root / split / "A" / f"{i}.tif", a, photometric="rgb")
            np.save(root / split / "B" / f"{i}.npy", b)
            pairs.append((a, b))
    return pairs


def deep_section(root: Path, **kw) -> DataSection:
    base = dict(
        name="paired_folders",
        root=str(root),
        in_channels=4,
        out_channels=2,
        range={"B": [0, 1]},
        load_size=24,
        crop_size=16,
        num_workers=0,
    )
    return DataSection(**{**base, **kw})


@pytest.mark.parametrize("cache", [True, False])
def test_deep_pairs_keep_their_values_and_share_crop_and_flip(tmp_path: Path, cache: bool) -> None:
    write_deep_pairs(tmp_path)
    ds = build_dataset(deep_section(tmp_path, cache=cache, preprocess="crop"), "train", seed=3)
    if cache:
        assert ds.store[0][0].dtype == torch.uint16 and ds.store[1][0].dtype == torch.float32
    for epoch in range(3):
        for i in range(len(ds)):
            item = ds[(epoch, i)]
            assert item["A"].shape == (4, 16, 16) and item["B"].shape == (2, 16, 16)
            assert len(torch.unique(item["A"])) > 256  # more than 8 bits survive
            # B is A's first two channels: the same crop and flip on both sides
            torch.testing.assert_close(item["B"], item["A"][:2], atol=1e-5, rtol=0)


def test_deep_pairs_resize_bicubic_in_float(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    ds = build_dataset(deep_section(tmp_path), "train", seed=0)
    item = ds[0]
    assert item["A"].shape == (4, 16, 16) and item["A"].abs().max() <= 1
    torch.testing.assert_close(item["B"], item["A"][:2], atol=2e-3, rtol=0)


def test_channel_mismatch_names_file_and_counts(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    with pytest.raises(DataError) as info:
        build_dataset(deep_section(tmp_path, in_channels=3), "train")
    assert "A/0.tif: the file has 4 channel(s) but data.in_channels is 3" in one_line(info)


def test_a_float_side_without_a_range_is_an_error(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    with pytest.raises(DataError) as info:
        build_dataset(deep_section(tmp_path, range=None), "train")
    assert "0.npy: float32 values have no implied range" in one_line(info)


def test_out_of_range_file_is_named_unless_clip(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    np.save(tmp_path / "train" / "B" / "1.npy", np.full((20, 20, 2), 2.0, np.float32))
    with pytest.raises(DataError) as info:
        build_dataset(deep_section(tmp_path), "train")
    assert "B/1.npy: value 2 in channel 0 is outside data.range.B [0, 1]" in one_line(info)
    ds = build_dataset(deep_section(tmp_path, clip=True), "train")
    assert ds[1]["B"].min() == 1.0


def test_a_and_b_of_different_sizes(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    np.save(tmp_path / "train" / "B" / "2.npy", np.zeros((20, 22, 2), np.float32))
    with pytest.raises(DataError) as info:
        build_dataset(deep_section(tmp_path), "train")
    assert "A/2.tif is 20x20 but its partner" in one_line(info) and "2.npy is 20x22" in str(
        info.value
    )


def test_a_split_mixing_depths_is_an_error_when_cached(tmp_path: Path) -> None:
    write_deep_pairs(tmp_path)
    eight = ramp(20, 20, 4, "uint8")
    (tmp_path / "train" / "A" / "2.tif").unlink()
    tifffile.imwrite(tmp_path / "train" / "A" / "2.tif", eight, photometric="rgb")
    with pytest.raises(DataError) as info:
        build_dataset(deep_section(tmp_path), "train")
    assert "4 channel(s) of uint8 but" in one_line(info) and "share depth" in str(info.value)


# -- label maps --------------------------------------------------------------------------------
def test_one_hot_and_ignore() -> None:
    ids = np.array([[[0, 1, 2], [255, 1, 0]]], np.uint8)
    out = LabelMaps(3, 255).encode(ids)
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(0)[0], [0, 1, 2])
    assert out[:, 1, 0].sum() == 0  # the ignore id: all zero
    assert (out.sum(0) == np.array([[1, 1, 1], [0, 1, 1]])).all()


def test_the_dont_care_id_can_have_its_own_channel(tmp_path: Path) -> None:
    # SPADE pix2pix_dataset.py: 255 -> label_nc, one-hot over label_nc + contain_dontcare_label
    # channels, then the instance edges (COCO-Stuff: 182 + 1 + 1 = 184)
    ids = np.array([[[0, 1, 2], [255, 1, 0]], [[0, 0, 0], [0, 0, 1]]], np.uint8)
    out = LabelMaps(3, 255, instance=True, dontcare_channel=True).encode(ids)
    assert out.shape == (5, 2, 3)
    np.testing.assert_array_equal(out[3], [[0, 0, 0], [1, 0, 0]])  # the don't-care channel
    assert (out[:4].sum(0) == 1).all()
    np.testing.assert_array_equal(out[4], instance_edges(ids[1]))
    data = label_section(
        tmp_path, labels={"num_classes": 182, "dontcare_channel": True, "instance": True}
    )
    assert data.in_channels == 184
    with pytest.raises(ValueError, match="dontcare_channel needs an ignore_index"):
        label_section(
            tmp_path, labels={"num_classes": 4, "dontcare_channel": True, "ignore_index": None}
        )


def test_instance_edges_follow_pix2pixhd() -> None:
    inst = np.zeros((4, 5), np.int64)
    inst[1:3, 1:3] = 7
    edges = instance_edges(inst)
    expected = np.zeros((4, 5), np.float32)
    expected[1:3, 1:3] = 1  # inside pixels next to 0
    expected[0, 1:3] = expected[3, 1:3] = expected[1:3, 0] = expected[1:3, 3] = 1
    np.testing.assert_array_equal(edges, expected)


def write_labels(root: Path, n: int = 3, side: int = 24, classes: int = 4, instance=False):
    """A/*.png class ids in blocks (8-bit grey), B/*.png colours of the classes; optionally
    A_instance/*.png (16-bit) with one instance per block."""
    palette = np.array([[200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 0]], np.uint8)
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for sub in ("A", "B") + (("A_instance",) if instance else ()):
            (root / split / sub).mkdir(parents=True)
        for i in range(n):
            blocks = rng.integers(0, classes, size=(side // 4, side // 4))
            ids = np.kron(blocks, np.ones((4, 4), np.int64)).astype(np.uint8)
            Image.fromarray(ids).save(root / split / "A" / f"{i}.png")
            Image.fromarray(palette[ids]).save(root / split / "B" / f"{i}.png")
            if instance:
                inst = np.kron(
                    np.arange(blocks.size).reshape(blocks.shape), np.ones((4, 4), np.int64)
                )
                write_image(root / split / "A_instance" / f"{i}.png", inst[None].astype(np.uint16))
    return palette


def label_section(root: Path, **kw) -> DataSection:
    base = dict(
        name="paired_folders",
        root=str(root),
        labels={"num_classes": 4},
        load_size=30,
        crop_size=16,
        num_workers=0,
    )
    return DataSection(**{**base, **kw})


@pytest.mark.parametrize("cache", [True, False])
def test_label_maps_feed_one_hot_with_the_same_geometry(tmp_path: Path, cache: bool) -> None:
    palette = write_labels(tmp_path)
    data = label_section(tmp_path, cache=cache)
    assert data.in_channels == 4
    ds = build_dataset(data, "train", seed=1)
    for epoch in range(3):
        for i in range(len(ds)):
            item = ds[(epoch, i)]
            a = item["A"]
            assert a.shape == (4, 16, 16) and set(torch.unique(a).tolist()) <= {0.0, 1.0}
            assert (a.sum(0) == 1).all()  # nearest resize: no blended or new ids
            colours = palette[a.argmax(0).numpy()].transpose(2, 0, 1).astype(np.float32)
            # B (bicubic) matches the colour of A's class away from block edges
            b = (item["B"].numpy() + 1) * 127.5
            agree = (np.abs(b - colours).max(0) < 40).mean()
            assert agree > 0.6, agree


def test_label_instance_edges_channel(tmp_path: Path) -> None:
    write_labels(tmp_path, instance=True)
    data = label_section(tmp_path, labels={"num_classes": 4, "instance": True})
    assert data.in_channels == 5
    item = build_dataset(data, "train", train=False)[0]
    edges = item["A"][4]
    assert item["A"].shape == (5, 16, 16) and 0 < edges.mean() < 1
    assert set(torch.unique(edges).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize(
    ("size_in", "size_out"),
    [((683, 517), (286, 217)), ((1024, 2048), (286, 572)), ((7, 2), (22, 7))],
)
def test_label_maps_resize_on_pils_nearest_grid(size_in, size_out) -> None:
    # pix2pixHD's and SPADE's datasets resize labels with PIL's Image.NEAREST: the pixel under
    # each output pixel's centre (683 -> 286 with torch's legacy nearest lands a column off)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 200, size=size_in).astype(np.uint8)
    pil = np.asarray(Image.fromarray(ids).resize(size_out[::-1], Image.NEAREST))
    ours = resize(torch.from_numpy(ids)[None], size_out, nearest=True)[0].numpy()
    assert ours.dtype == np.uint8 and np.array_equal(ours, pil)


def test_label_errors(tmp_path: Path) -> None:
    write_labels(tmp_path)
    bad = np.full((24, 24), 3, np.uint8)
    bad[5, 5] = 9
    Image.fromarray(bad).save(tmp_path / "train" / "A" / "1.png")
    with pytest.raises(DataError) as info:
        build_dataset(label_section(tmp_path), "train")
    text = one_line(info)
    assert (
        "A/1.png: class id 9 is not below data.labels.num_classes 4 nor the ignore id 255" in text
    )
    bad[5, 5] = 255  # the ignore id is fine
    Image.fromarray(bad).save(tmp_path / "train" / "A" / "1.png")
    build_dataset(label_section(tmp_path), "train")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "train" / "A" / "1.png")
    with pytest.raises(DataError) as info:
        build_dataset(label_section(tmp_path), "train")
    assert "A/1.png: a label map has 1 channel of class ids but the file has 3" in one_line(info)
    with pytest.raises(DataError) as info:
        build_dataset(label_section(tmp_path, labels={"num_classes": 4, "instance": True}))
    assert "no 'A_instance' folder" in one_line(info)
    (tmp_path / "al" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(tmp_path / "al" / "train" / "0.png")
    with pytest.raises(DataError) as info:
        build_dataset(label_section(tmp_path / "al", name="aligned"), "train")
    assert "aligned layout holds images, not label maps" in one_line(info)


def test_labels_recipe_rules(tmp_path: Path) -> None:
    inherited = DataSection(root=str(tmp_path), labels={"num_classes": 4}, in_channels=3)
    assert inherited.in_channels == 4  # derived: a base recipe's RGB in_channels is replaced
    edges = DataSection(root=str(tmp_path), labels={"num_classes": 4, "instance": True})
    assert edges.in_channels == 5
    with pytest.raises(ValueError, match="range.A does not apply to label maps"):
        DataSection(root=str(tmp_path), labels={"num_classes": 4}, range={"A": [0, 1]})
    same = DataSection(root=str(tmp_path), labels={"num_classes": 4}, in_channels=4)
    assert same.in_channels == 4


# -- learning on 16-bit 4-channel data ----------------------------------------------------------
def test_a_tiny_unet_learns_a_16_bit_4_channel_task(tmp_path: Path) -> None:
    """B = a per-channel affine map of A (both uint16 4-channel TIFFs, 12-bit range): the val
    L1 drops well below its step-0 value within a few hundred steps."""
    from ganzoo.training.trainer import Trainer

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2)):
        for sub in ("A", "B"):
            (tmp_path / split / sub).mkdir(parents=True)
        for i in range(n):
            blocks = rng.random((4, 4, 4))
            a = np.kron(blocks, np.ones((8, 8, 1))) * 4095
            b = 4095 - a[..., ::-1]
            tifffile.imwrite(tmp_path / split / "A" / f"{i}.tif", a.astype(np.uint16))
            tifffile.imwrite(tmp_path / split / "B" / f"{i}.tif", b.astype(np.uint16))
    data = (
        f"data={{name: paired_folders, root: {tmp_path}, in_channels: 4, out_channels: 4, "
        "range: {A: [0, 4095], B: [0, 4095]}, load_size: 32, crop_size: 32, batch_size: 4, "
        "num_workers: 0}"
    )
    recipe = load_recipe(
        ROOT / "recipes" / "quickstart.yaml",
        [
            data,
            "generator={name: unet, num_downs: 5, ngf: 8, norm: batch}",
            "discriminator={name: patchgan, n_layers: 2, ndf: 8, norm: batch}",
            "train.precision=fp32",
            "train.log_every=50",
            "train.sample_every=1000",
            "train.checkpoint_every=1000",
            "train.val_batches=1",
            "train.max_steps=90",
            "optim.lr_g=0.002",
        ],
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    before = trainer.validate()["val_l1"]
    final = trainer.fit()
    assert final["val_l1"] < 0.5 * before, (before, final["val_l1"])


def test_aligned_16_bit_png_pairs(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    a = ramp(16, 16, 3, "uint16", seed=1)
    b = ramp(16, 16, 3, "uint16", seed=2)
    write_image(tmp_path / "train" / "0.png", np.concatenate([a, b], axis=1).transpose(2, 0, 1))
    data = DataSection(root=str(tmp_path), preprocess="none", crop_size=16, num_workers=0)
    item = build_dataset(data, "train", train=False)[0]
    for got, want in ((item["A"], a), (item["B"], b)):
        expected = torch.from_numpy(want.transpose(2, 0, 1) / 65535 * 2 - 1).float()
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    grey = build_dataset(
        DataSection(
            root=str(tmp_path), preprocess="none", crop_size=16, num_workers=0, in_channels=1
        ),
        "train",
        train=False,
    )[0]
    assert grey["A"].shape == (1, 16, 16) and len(torch.unique(grey["A"])) > 200
