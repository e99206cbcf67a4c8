"""Loading a trained G and `ganzoo translate`: A|B or plain inputs, pad vs resize, eval vs train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_recipe, train_tiny_run
from PIL import Image

from ganzoo.artifacts.checkpoint import load_checkpoint
from ganzoo.artifacts.loading import load_generator
from ganzoo.artifacts.schema import ema_weights
from ganzoo.build import build_generator
from ganzoo.cli import main
from ganzoo.errors import DataError, GanzooError, SizeError, TrainingError
from ganzoo.evaluation.inference import pad_to, parse_size, to_uint8, valid_size
from ganzoo.evaluation.translate import translate, translate_files
from ganzoo.inference_mode import generator_in_mode
from ganzoo.training.trainer import train


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_data, tmp_path_factory.mktemp("translate"))


def direct(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """G on one HxWxC uint8 image whose size G accepts, as uint8 HxWxC."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        return to_uint8(net(x))[0].permute(1, 2, 0).numpy()


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_load_generator_uses_ema_and_says_so(run: Path) -> None:
    state = load_checkpoint(run / "checkpoints" / "step_00000003.pt")
    g, recipe, info = load_generator(run)
    assert info.ema and info.step == 3 and info.kind == "checkpoint"
    assert "EMA weights" in info.describe() and not g.training
    expected = ema_weights(state["ema"])
    assert all(torch.equal(v, expected[k]) for k, v in g.state_dict().items())
    raw, _, raw_info = load_generator(run / "checkpoints" / "step_00000003.pt", use_ema=False)
    assert not raw_info.ema
    assert all(torch.equal(v, state["generator"][k]) for k, v in raw.state_dict().items())
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert not torch.equal(g(x), raw(x))  # 3 EMA updates with decay 0.9 lag the raw weights
    assert recipe.to_dict() == state["recipe"]


def test_load_errors_are_one_line(run: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    (tmp_path / "empty").mkdir()
    for path, expected in [
        (tmp_path / "missing", "no such run directory, checkpoint"),
        (tmp_path / "bad.pt", "not a readable ganzoo checkpoint"),
        (tmp_path / "bad.safetensors", "safetensors"),
        (tmp_path / "empty", "not a run directory"),
    ]:
        with pytest.raises(TrainingError) as info:
            load_generator(path)
        assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_folder_of_ab_files_takes_the_condition_half(run: Path, tiny_data: Path, tmp_path):
    g, _, _ = load_generator(run)
    result = translate(run, tiny_data / "val", tmp_path / "ab", batch_size=3)
    assert [p.name for p in result.outputs] == ["0.png", "1.png", "2.png", "3.png"]
    assert result.paired == 4 and result.direction == "AtoB"  # the recipe's direction
    for out in result.outputs:
        pair = png(tiny_data / "val" / out.name)
        assert png(out).shape == (32, 32, 3)
        np.testing.assert_array_equal(png(out), direct(g, pair[:, :32]))
    flipped = translate(run, tiny_data / "val" / "0.png", tmp_path / "ba", direction="BtoA")
    pair = png(tiny_data / "val" / "0.png")
    np.testing.assert_array_equal(png(flipped.outputs[0]), direct(g, pair[:, 32:]))


def test_plain_images_pad_or_resize(run: Path, tmp_path: Path) -> None:
    g, _, _ = load_generator(run)
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "odd.png")
    padded = translate(run, tmp_path / "odd.png", tmp_path / "pad")
    assert padded.paired == 0
    out = png(padded.outputs[0])
    assert out.shape == (36, 44, 3)  # cropped back to the input size
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert valid_size(g, 36, 44) == (64, 64)
    xp, (top, left) = pad_to(x, (64, 64))
    assert (top, left) == (14, 10) and torch.equal(xp[..., 14:50, 10:54], x)
    with torch.no_grad():
        expected = to_uint8(g(xp)[..., 14:50, 10:54])[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(out, expected)

    resized = translate(run, tmp_path / "odd.png", tmp_path / "resize", fit="resize")
    assert png(resized.outputs[0]).shape == (32, 32, 3)  # the training crop size
    wide = translate(run, tmp_path / "odd.png", tmp_path / "wide", fit="resize", size="32x64")
    assert png(wide.outputs[0]).shape == (32, 64, 3)
    with pytest.raises(SizeError, match="multiple of 32.*--size") as info:
        translate(run, tmp_path / "odd.png", tmp_path / "bad", fit="resize", size="36x44")
    assert "\n" not in str(info.value)
    big = translate(run, tmp_path / "odd.png", tmp_path / "big", size=70)  # resize, then pad
    assert png(big.outputs[0]).shape == (70, 70, 3)


def test_auto_layout_reads_two_crops_wide_files_as_pairs(run: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(inputs / "pair.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(inputs / "square.jpg")
    auto = translate(run, inputs, tmp_path / "auto")
    assert auto.paired == 1
    assert [png(p).shape for p in auto.outputs] == [(32, 32, 3), (32, 32, 3)]
    plain = translate(run, inputs, tmp_path / "plain", layout="plain")
    assert plain.paired == 0 and png(plain.outputs[0]).shape == (32, 64, 3)
    Image.fromarray(rng.integers(0, 256, (32, 33, 3), dtype=np.uint8)).save(inputs / "o.png")
    with pytest.raises(DataError, match="odd"):
        translate(run, inputs / "o.png", tmp_path / "odd", layout="paired")


def test_inputs_sharing_a_stem_are_refused(run: Path, tmp_path: Path) -> None:
    for suffix in (".png", ".jpg"):
        Image.new("RGB", (32, 32)).save(tmp_path / f"a{suffix}")
    with pytest.raises(DataError, match="both be written"):
        translate(run, tmp_path, tmp_path / "out")
    with pytest.raises(DataError, match="overwrite its input"):
        translate(run, tmp_path / "a.png", tmp_path)


def test_grayscale_recipe_reads_and_writes_one_channel(tiny_data: Path, tmp_path: Path) -> None:
    recipe = tiny_recipe(
        tiny_data, "train.max_steps=1", "data.in_channels=1", "data.out_channels=1"
    )
    train(recipe, run_dir=tmp_path / "gray", progress=False)
    result = translate(tmp_path / "gray", tiny_data / "val" / "1.png", tmp_path / "out")
    with Image.open(result.outputs[0]) as img:
        assert img.mode == "L" and img.size == (32, 32)
    g, _, _ = load_generator(tmp_path / "gray")
    assert g.model.model[0].in_channels == 1  # the outermost conv takes one channel


def test_train_mode_uses_batch_statistics_and_dropout_without_updating_g(tiny_data: Path):
    # num_downs 6: level 5 has dropout (as the reference U-Net's ngf*8 levels)
    recipe = tiny_recipe(
        tiny_data,
        "generator={name: unet, num_downs: 6, ngf: 8, norm: batch}",
        "data.crop_size=64",
        "data.load_size=72",
    )
    g = build_generator(recipe).eval()
    assert any(isinstance(m, torch.nn.Dropout) for m in g.modules())
    before = {k: v.clone() for k, v in g.state_dict().items()}
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad(), generator_in_mode(g, "eval") as net:
        ev1, ev2 = net(x), net(x)
    with torch.no_grad():
        with generator_in_mode(g, "train", seed=0) as net:
            tr0 = net(x)
        with generator_in_mode(g, "train", seed=0) as net:
            tr0_again = net(x)
        with generator_in_mode(g, "train", seed=1) as net:
            tr1 = net(x)
    assert torch.equal(ev1, ev2)  # eval mode is deterministic
    assert not torch.allclose(tr0, ev1, atol=1e-3)  # batch statistics, not running ones
    assert torch.equal(tr0, tr0_again) and not torch.equal(tr0, tr1)  # seeded dropout
    assert not g.training
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())  # stats untouched


def test_translate_in_train_mode_differs_and_keeps_running_stats(run: Path, tiny_data, tmp_path):
    g, recipe, _ = load_generator(run)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    files = sorted((tiny_data / "val").glob("*.png"))
    ev = translate_files(g, recipe, files, tmp_path / "eval")
    tr = translate_files(g, recipe, files, tmp_path / "train", mode="train")
    assert any(not np.array_equal(png(a), png(b)) for a, b in zip(ev.outputs, tr.outputs))
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())
    with pytest.raises(GanzooError, match="use auto, eval or train"):
        translate_files(g, recipe, files, tmp_path / "x", mode="test")


def test_parse_size() -> None:
    assert parse_size("256") == (256, 256) and parse_size("36x44") == (36, 44)
    assert parse_size(None) is None and parse_size(64) == (64, 64)
    for bad in ("0", "12x", "axb", "-3"):
        with pytest.raises(GanzooError):
            parse_size(bad)


def test_cli_translate(run: Path, tiny_data: Path, tmp_path: Path, capsys) -> None:
    code = main(
        [
            "translate",
            str(run),
            "--input",
            str(tiny_data / "val"),
            "--output",
            str(tmp_path / "out"),
            "--mode",
            "train",
            "--batch-size",
            "2",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "translated 4 image(s), 4 read as A|B (AtoB) in train mode" in out
    assert "EMA weights" in out and len(list((tmp_path / "out").glob("*.png"))) == 4
    code = main(["translate", str(run), "-i", str(tmp_path / "nothing"), "-o", str(tmp_path)])
    _, err = capsys.readouterr()
    assert code == 2 and "no such file or folder" in err and len(err.strip().splitlines()) == 1
    code = main(
        [
            "translate",
            str(run),
            "-i",
            str(tiny_data / "val"),
            "-o",
            str(tmp_path / "r"),
            "--resize",
            "--size",
            "36x44",
        ]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "nearest valid sizes" in err and len(err.strip().splitlines()) == 1


def small_run(root: Path, data: str) -> Path:
    """A 2-step run of the tiny U-Net on ``data`` (a recipe data mapping, YAML)."""
    from ganzoo.recipe import load_recipe

    recipe = load_recipe(
        Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml",
        [
            data,
            "generator={name: unet, num_downs: 5, ngf: 8, norm: batch}",
            "discriminator={name: patchgan, n_layers: 2, ndf: 8, norm: batch}",
            "train.precision=fp32",
            "train.max_steps=2",
            "train.sample_every=1000",
            "train.checkpoint_every=1000",
            "train.val_batches=1",
        ],
    )
    train(recipe, run_dir=root / "run", progress=False)
    return root / "run"


# -- deep files: outputs keep the input's kind and depth -----------------------------------------
@pytest.fixture(scope="module")
def deep_run(tmp_path_factory) -> Path:
    """A 2-step run on 16-bit RGB PNG pairs (A and B 3 channels, uint16 by dtype)."""
    import imagecodecs

    root = tmp_path_factory.mktemp("deep")
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for side in ("A", "B"):
            (root / split / side).mkdir(parents=True)
        for i in range(2):
            a = rng.integers(0, 65536, size=(32, 32, 3)).astype(np.uint16)
            for side, x in (("A", a), ("B", 65535 - a)):
                (root / split / side / f"{i}.png").write_bytes(imagecodecs.png_encode(x))
    return small_run(
        root,
        f"data={{name: paired_folders, root: {root}, load_size: 32, crop_size: 32, "
        "batch_size: 2, num_workers: 0}",
    )


def deep_inputs(folder: Path) -> Path:
    """x.png (16-bit RGB), y.tif (uint16), z.npy (uint16 HWC) and w.tif (uint8), 32x32."""
    import imagecodecs
    import tifffile

    folder.mkdir()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 65536, size=(32, 32, 3)).astype(np.uint16)
    (folder / "x.png").write_bytes(imagecodecs.png_encode(x))
    tifffile.imwrite(folder / "y.tif", x, photometric="rgb")
    np.save(folder / "z.npy", x)
    tifffile.imwrite(folder / "w.tif", (x >> 8).astype(np.uint8), photometric="rgb")
    return folder


def read_any(path: Path) -> np.ndarray:
    from ganzoo.data.formats import read_image

    return read_image(path)


def test_translate_keeps_kind_and_depth(deep_run: Path, tmp_path: Path) -> None:
    inputs = deep_inputs(tmp_path / "in")
    result = translate(deep_run, inputs, tmp_path / "out")
    names = sorted(p.name for p in result.outputs)
    assert names == ["w.tif", "x.png", "y.tif", "z.npy"]
    for name in ("x.png", "y.tif", "z.npy"):
        out = read_any(tmp_path / "out" / name)
        assert out.dtype == np.uint16 and out.shape == (3, 32, 32), name
        assert len(np.unique(out)) > 256, name  # more than 8 bits of precision kept
    assert np.load(tmp_path / "out" / "z.npy").shape == (32, 32, 3)  # data.array_layout hwc
    assert read_any(tmp_path / "out" / "w.tif").dtype == np.uint8
    same = [read_any(tmp_path / "out" / n).astype(int) for n in ("x.png", "y.tif", "z.npy")]
    assert np.array_equal(same[0], same[1]) and np.array_equal(same[0], same[2])


@pytest.mark.parametrize(
    ("fmt", "ending", "dtype"),
    [
        ("png", ".png", "uint8"),
        ("png16", ".png", "uint16"),
        ("tiff", ".tif", "uint16"),
        ("npy", ".npy", "uint16"),
    ],
)
def test_translate_format_option(
    deep_run: Path, tmp_path: Path, fmt: str, ending: str, dtype: str
) -> None:
    inputs = deep_inputs(tmp_path / "in")
    (inputs / "y.tif").unlink(), (inputs / "z.npy").unlink(), (inputs / "w.tif").unlink()
    assert (
        main(
            [
                "translate",
                str(deep_run),
                "-i",
                str(inputs),
                "-o",
                str(tmp_path / "o"),
                "--format",
                fmt,
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = read_any(tmp_path / "o" / f"x{ending}")
    assert out.dtype == np.dtype(dtype)
    assert (len(np.unique(out)) > 256) == (dtype == "uint16")  # png: the 8-bit preview


def test_translator_takes_uint16_and_float_arrays(deep_run: Path) -> None:
    import ganzoo

    model = ganzoo.load(deep_run, device="cpu")
    x16 = np.random.default_rng(2).integers(0, 65536, size=(32, 32, 3)).astype(np.uint16)
    y16 = model(x16)
    assert y16.dtype == np.uint16 and y16.shape == (32, 32, 3) and len(np.unique(y16)) > 256
    yf = model(x16.astype(np.float32) / 65535)
    assert yf.dtype == np.float32 and 0 <= yf.min() and yf.max() <= 1
    np.testing.assert_allclose(yf * 65535, y16, atol=1.0)


def test_float_tiff_and_label_maps_end_to_end(tmp_path: Path) -> None:
    """train -> translate -> files: float32 TIFFs (declared ranges) stay float32 TIFFs in
    data.range.B; label maps (one-hot input) give 8-bit PNG images."""
    import tifffile

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for sub in ("A", "B", "L"):
            (tmp_path / split / sub).mkdir(parents=True)
        for i in range(2):
            a = rng.random((32, 32, 2)).astype(np.float32) * 10
            tifffile.imwrite(tmp_path / split / "A" / f"{i}.tif", a.transpose(2, 0, 1))
            tifffile.imwrite(tmp_path / split / "B" / f"{i}.tif", a[..., 0] / 10 - 0.5)
            ids = rng.integers(0, 3, size=(32, 32)).astype(np.uint8)
            Image.fromarray(ids).save(tmp_path / split / "L" / f"{i}.png")
    floats = small_run(
        tmp_path / "f",
        f"data={{name: paired_folders, root: {tmp_path}, in_channels: 2, out_channels: 1, "
        "range: {A: [0, 10], B: [-0.5, 0.5]}, load_size: 32, crop_size: 32, num_workers: 0}",
    )
    translate(floats, tmp_path / "val" / "A", tmp_path / "out_f")
    out = tifffile.imread(tmp_path / "out_f" / "0.tif")
    assert out.dtype == np.float32 and out.shape == (32, 32)
    assert -0.5 <= out.min() and out.max() <= 0.5 and len(np.unique(out)) > 256
    # label maps: L/ (class ids) -> B/ images of 8 bits (the 1-channel B above, as PNG)
    for split in ("train", "val"):
        (tmp_path / split / "A").rename(tmp_path / split / "F")
        (tmp_path / split / "L").rename(tmp_path / split / "A")
        for i in range(2):
            b = ((tifffile.imread(tmp_path / split / "B" / f"{i}.tif") + 0.5) * 255).astype(
                np.uint8
            )
            (tmp_path / split / "B" / f"{i}.tif").unlink()
            Image.fromarray(b).save(tmp_path / split / "B" / f"{i}.png")
    labels = small_run(
        tmp_path / "l",
        f"data={{name: paired_folders, root: {tmp_path}, out_channels: 1, "
        "labels: {num_classes: 3}, load_size: 32, crop_size: 32, num_workers: 0}",
    )
    translate(labels, tmp_path / "val" / "A", tmp_path / "out_l")
    image = np.asarray(Image.open(tmp_path / "out_l" / "0.png"))
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    import ganzoo

    model = ganzoo.load(labels, device="cpu")
    ids = np.asarray(Image.open(tmp_path / "val" / "A" / "0.png"))
    palette = Image.fromarray(ids).convert("P")  # a palette PNG's indices are the ids
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] * 85 + [0, 0, 0])
    assert np.array_equal(np.asarray(palette), ids)
    out = model(palette)
    assert out.mode == "L" and np.array_equal(np.asarray(out), image)
    assert np.array_equal(model(ids), image)
    with pytest.raises(GanzooError, match="class id 7 is not below data.labels.num_classes 3"):
        model(np.full((32, 32), 7, np.uint8))
    with pytest.raises(GanzooError, match="takes label maps as H x W class ids, got an array"):
        model(np.zeros((32, 32, 3), np.uint8))


def test_a_12_bit_range_round_trips_and_png_is_a_preview(tmp_path: Path) -> None:
    """data.range.B [0, 4095]: 16-bit PNG outputs hold 0 .. 4095; --format png stretches the
    range to 0 .. 255; a JPEG input (8-bit output) that cannot hold it is a one-line error."""
    import imagecodecs

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for side in ("A", "B"):
            (tmp_path / split / side).mkdir(parents=True)
        for i in range(2):
            a = rng.integers(0, 4096, size=(32, 32)).astype(np.uint16)
            for side, x in (("A", a), ("B", 4095 - a)):
                (tmp_path / split / side / f"{i}.png").write_bytes(imagecodecs.png_encode(x))
    run = small_run(
        tmp_path / "r",
        f"data={{name: paired_folders, root: {tmp_path}, in_channels: 1, out_channels: 1, "
        "range: {A: [0, 4095], B: [0, 4095]}, load_size: 32, crop_size: 32, num_workers: 0}",
    )
    translate(run, tmp_path / "val" / "A", tmp_path / "o16")
    out = imagecodecs.png_decode((tmp_path / "o16" / "0.png").read_bytes())
    assert out.dtype == np.uint16 and out.max() <= 4095 and 1500 < out.mean() < 2600
    translate(run, tmp_path / "val" / "A", tmp_path / "o8", out_format="png")
    preview = np.asarray(Image.open(tmp_path / "o8" / "0.png"))
    expected = np.round(out.astype(np.float64) / 4095 * 255)
    assert preview.dtype == np.uint8 and np.abs(preview - expected).max() <= 1
    Image.fromarray((rng.random((32, 32)) * 15).astype(np.uint8)).save(tmp_path / "j.jpg")
    with pytest.raises(DataError) as info:
        translate(run, tmp_path / "j.jpg", tmp_path / "oj")
    assert "range.B [0, 4095] does not fit uint8" in str(info.value)
    assert "\n" not in str(info.value)


def test_instance_maps_are_read_next_to_the_label_maps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for sub in ("A", "B", "A_instance"):
            (tmp_path / split / sub).mkdir(parents=True)
        for i in range(2):
            ids = np.kron(rng.integers(0, 3, (4, 4)), np.ones((8, 8), np.int64)).astype(np.uint8)
            Image.fromarray(ids).save(tmp_path / split / "A" / f"{i}.png")
            Image.fromarray(ids * 80).save(tmp_path / split / "B" / f"{i}.png")
            inst = np.kron(np.arange(16).reshape(4, 4), np.ones((8, 8), np.int64))
            np.save(tmp_path / split / "A_instance" / f"{i}.npy", inst)
    run = small_run(
        tmp_path / "r",
        f"data={{name: paired_folders, root: {tmp_path}, direction: AtoB, out_channels: 1, "
        "labels: {num_classes: 3, instance: true}, load_size: 32, crop_size: 32, "
        "num_workers: 0}",
    )
    result = translate(run, tmp_path / "val" / "A", tmp_path / "out")
    assert sorted(p.name for p in result.outputs) == ["0.png", "1.png"]
    # outputs are images of the target's 8 bits, not of the ids' dtype (int64 with instances)
    assert Image.open(tmp_path / "out" / "0.png").mode == "L"
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids_instance").mkdir()
    np.save(tmp_path / "ids" / "0.npy", np.asarray(Image.open(tmp_path / "val/A/0.png"), np.int64))
    np.save(tmp_path / "ids_instance" / "0.npy", inst)
    translate(run, tmp_path / "ids", tmp_path / "out_npy")
    assert np.load(tmp_path / "out_npy" / "0.npy").dtype == np.uint8
    (tmp_path / "solo").mkdir()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "solo" / "0.png")
    with pytest.raises(DataError) as info:
        translate(run, tmp_path / "solo", tmp_path / "out2")
    assert "solo/0.png: no instance map" in str(info.value) and "\n" not in str(info.value)
