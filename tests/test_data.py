"""The paired-data pipeline: sources, shared preprocessing, epoch order, errors, embedded data."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganzoo import registry
from ganzoo.data import (
    DataWarning,
    PairTransform,
    build_dataset,
    embedded_names,
    epoch_batches,
    epoch_order,
    len_batches,
    resolve_root,
    split_name,
)
from ganzoo.data.loader import _first_line
from ganzoo.data.seeding import item_rng
from ganzoo.errors import DataError, GanzooError
from ganzoo.recipe import DataSection

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


# -- helpers ---------------------------------------------------------------------------------
def noise(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels == 3 else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_aligned(root: Path, split: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """ROOT/split/<i>.png, each file A|B side by side (PNG: lossless, values exact)."""
    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(pairs):
        Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{i:03d}.png")
    return folder


def section(root: Path | str, **kw) -> DataSection:
    base = {"root": str(root), "cache": True, "num_workers": 0}
    return DataSection(**{**base, **kw})


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Inverse of x/127.5 - 1 for (C, H, W) -> (H, W, C) uint8."""
    return np.rint((x.numpy() + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0)


@pytest.fixture()
def twins(tmp_path: Path) -> Path:
    """6 train pairs (20x20) whose A and B halves are identical noise, and 2 val pairs."""
    write_aligned(tmp_path, "train", [(noise(20, 20, i),) * 2 for i in range(6)])
    write_aligned(tmp_path, "val", [(noise(20, 20, 10 + i),) * 2 for i in range(2)])
    return tmp_path


@pytest.fixture()
def distinct(tmp_path: Path) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    """5 train pairs of 16x16 with different left and right halves."""
    pairs = [(noise(16, 16, i), noise(16, 16, 100 + i)) for i in range(5)]
    write_aligned(tmp_path, "train", pairs)
    return tmp_path, pairs


# -- sources ---------------------------------------------------------------------------------
def test_datasets_are_registered() -> None:
    assert {"aligned", "paired_folders"} <= set(registry.list("dataset"))
    params = {p.name: p for p in registry.get("dataset", "aligned").parameters()}
    assert list(params) == ["direction", "array_layout", "npz_key"]
    assert params["direction"].default == "AtoB" and params["array_layout"].default == "hwc"


def test_unknown_direction_is_a_recipe_error(tmp_path: Path) -> None:
    with pytest.raises(GanzooError, match="direction"):
        DataSection(root=str(tmp_path), direction="sideways")


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_aligned_splits_halves_by_direction(distinct, direction: str) -> None:
    root, pairs = distinct
    ds = build_dataset(section(root, preprocess="none", flip=False, direction=direction), "train")
    assert len(ds) == 5
    for i, (left, right) in enumerate(pairs):
        item = ds[i]
        inp, target = (left, right) if direction == "AtoB" else (right, left)
        assert item["A"].dtype == torch.float32 and item["A"].shape == (3, 16, 16)
        np.testing.assert_array_equal(to_uint8(item["A"]), inp)
        np.testing.assert_array_equal(to_uint8(item["B"]), target)
        assert item["path"].endswith(f"{i:03d}.png")


def test_values_map_to_minus_one_one(tmp_path: Path) -> None:
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    write_aligned(tmp_path, "train", [(black, white)])
    item = build_dataset(section(tmp_path, preprocess="none"), "train")[0]
    assert torch.all(item["A"] == -1.0) and torch.all(item["B"] == 1.0)


def test_paired_folders_match_by_stem_and_direction(tmp_path: Path) -> None:
    a0, b0, a1, b1 = (noise(8, 12, s) for s in range(4))
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
    Image.fromarray(a0).save(tmp_path / "train/A/x.png")
    Image.fromarray(b0).save(tmp_path / "train/B/x.png")
    Image.fromarray(a1).save(tmp_path / "train/A/y.png")
    Image.fromarray(b1).save(tmp_path / "train/B/y.bmp")  # stems match across extensions
    for direction, first in (("AtoB", (a0, b0)), ("BtoA", (b0, a0))):
        kw = {"name": "paired_folders", "preprocess": "none", "flip": False}
        ds = build_dataset(section(tmp_path, direction=direction, **kw), "train")
        assert len(ds) == 2 and ds[0]["path"].endswith("A/x.png")
        np.testing.assert_array_equal(to_uint8(ds[0]["A"]), first[0])
        np.testing.assert_array_equal(to_uint8(ds[0]["B"]), first[1])
        np.testing.assert_array_equal(to_uint8(ds[1]["B"]), b1 if direction == "AtoB" else a1)


def test_grayscale_input_uses_pil_luma(distinct) -> None:
    root, pairs = distinct
    ds = build_dataset(
        section(root, in_channels=1, out_channels=3, preprocess="none", flip=False), "train"
    )
    item = ds[2]
    assert item["A"].shape == (1, 16, 16) and item["B"].shape == (3, 16, 16)
    luma = np.asarray(Image.fromarray(pairs[2][0]).convert("L"))
    np.testing.assert_array_equal(to_uint8(item["A"])[..., 0], luma)
    batch = next(iter(epoch_batches(ds, 2, seed=0)))
    assert batch["A"].shape == (2, 1, 16, 16) and batch["B"].shape == (2, 3, 16, 16)


# -- preprocessing ---------------------------------------------------------------------------
def test_same_crop_and_flip_for_a_and_b(twins: Path) -> None:
    data = section(twins, load_size=24, crop_size=16)
    ds = build_dataset(data, "train", train=True, seed=3)
    flips = set()
    for epoch in range(6):
        for i in range(len(ds)):
            item = ds[(epoch, i)]
            assert item["A"].shape == (3, 16, 16)
            assert torch.equal(item["A"], item["B"])
            flips.add(ds.transform.draw(24, 24, item_rng(3, epoch, i))[2])
    assert flips == {True, False}  # the test covered flipped and unflipped items


def test_train_crop_matches_reference_resize_then_crop(distinct) -> None:
    """A training item is PIL-bicubic resize to load_size, then a crop at the drawn position."""
    root, pairs = distinct
    ds = build_dataset(section(root, load_size=20, crop_size=12, flip=True), "train", seed=7)
    for i in range(len(ds)):
        top, left, flip = ds.transform.draw(20, 20, item_rng(7, 0, i))
        for side, image in (("A", pairs[i][0]), ("B", pairs[i][1])):
            ref = np.asarray(Image.fromarray(image).resize((20, 20), Image.BICUBIC))
            ref = ref[top : top + 12, left : left + 12]
            ref = ref[:, ::-1] if flip else ref
            diff = np.abs(to_uint8(ds[(0, i)][side]).astype(int) - ref.astype(int))
            assert diff.max() <= 1 and (diff > 0).mean() < 0.05  # torchvision vs PIL bicubic


def test_augmentation_is_a_pure_function_of_seed_epoch_index(twins: Path) -> None:
    data = section(twins, load_size=28, crop_size=16)
    one = build_dataset(data, "train", seed=5)
    two = build_dataset(data.model_copy(update={"cache": False}), "train", seed=5)
    other_seed = build_dataset(data, "train", seed=6)
    for i in range(len(one)):
        one.set_epoch(2)
        assert torch.equal(one[i]["A"], two[(2, i)]["A"])  # cache on/off, set_epoch or key
    assert any(not torch.equal(one[(0, i)]["A"], one[(1, i)]["A"]) for i in range(len(one)))
    assert any(not torch.equal(one[(0, i)]["A"], other_seed[(0, i)]["A"]) for i in range(6))


def test_flip_off_keeps_the_same_crops(twins: Path) -> None:
    on = build_dataset(section(twins, load_size=28, crop_size=16, flip=True), "train", seed=1)
    off = build_dataset(section(twins, load_size=28, crop_size=16, flip=False), "train", seed=1)
    for i in range(len(on)):
        a_on, a_off = on[(0, i)]["A"], off[(0, i)]["A"]
        assert torch.equal(a_on, a_off) or torch.equal(a_on.flip(-1), a_off)


def test_eval_is_deterministic_resize_to_crop_without_flip(distinct) -> None:
    root, pairs = distinct
    data = section(root, load_size=20, crop_size=12)
    ds = build_dataset(data, "train", train=False, seed=0)
    for i in range(len(ds)):
        ref = np.asarray(Image.fromarray(pairs[i][0]).resize((12, 12), Image.BICUBIC))
        got = to_uint8(ds[(0, i)]["A"])
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1
        assert torch.equal(ds[(0, i)]["A"], ds[(9, i)]["A"])


def test_eval_crop_is_centred(distinct) -> None:
    root, pairs = distinct
    ds = build_dataset(section(root, preprocess="crop", crop_size=10), "train", train=False)
    np.testing.assert_array_equal(to_uint8(ds[0]["A"]), pairs[0][0][3:13, 3:13])


def test_non_square_crop(tmp_path: Path) -> None:
    write_aligned(tmp_path, "train", [(noise(20, 40, i), noise(20, 40, i + 9)) for i in range(3)])
    data = section(tmp_path, load_size=10, crop_size=[8, 16])
    assert data.image_size == (8, 16)
    ds = build_dataset(data, "train")
    assert ds.transform.prepared_size(20, 40) == (10, 20)  # jitter 10/8 on both sides
    assert ds[0]["A"].shape == (3, 8, 16) and ds[0]["B"].shape == (3, 8, 16)
    assert build_dataset(data, "train", train=False)[0]["A"].shape == (3, 8, 16)
    batch = next(iter(epoch_batches(ds, 3, seed=0)))
    assert batch["A"].shape == (3, 3, 8, 16)


@pytest.mark.parametrize(
    ("h", "w"), [(10, 14), (12, 16), (6, 9), (18, 22)], ids=["round", "exact", "odd", "half"]
)
def test_preprocess_none_rounds_sides_to_multiples_of_4(tmp_path: Path, h: int, w: int) -> None:
    write_aligned(tmp_path, "train", [(noise(h, w, 0), noise(h, w, 1))])
    item = build_dataset(section(tmp_path, preprocess="none"), "train")[0]
    # the reference __make_power_2: int(round(side / 4) * 4), Python's round-half-to-even
    assert item["A"].shape[-2:] == (int(round(h / 4) * 4), int(round(w / 4) * 4))


def test_scale_width_keeps_aspect_and_min_height(tmp_path: Path) -> None:
    write_aligned(tmp_path, "train", [(noise(12, 24, 0), noise(12, 24, 1))])
    item = build_dataset(
        section(tmp_path, preprocess="scale_width", load_size=16, crop_size=4), "train"
    )[0]
    assert item["A"].shape[-2:] == (8, 16)
    tall = section(tmp_path, preprocess="scale_width", load_size=16, crop_size=10)
    assert build_dataset(tall, "train")[0]["A"].shape[-2:] == (10, 16)  # height >= crop
    swc = section(tmp_path, preprocess="scale_width_and_crop", load_size=16, crop_size=6)
    assert build_dataset(swc, "train")[0]["A"].shape[-2:] == (6, 6)
    assert build_dataset(swc, "train", train=False)[0]["A"].shape[-2:] == (6, 6)


# -- epoch order, resumption, sharding, workers ----------------------------------------------
def test_epoch_order_is_a_reproducible_permutation() -> None:
    first = epoch_order(50, seed=1, epoch=0)
    assert sorted(first) == list(range(50))
    assert first == epoch_order(50, seed=1, epoch=0)
    assert first != epoch_order(50, seed=1, epoch=1)
    assert first != epoch_order(50, seed=2, epoch=0)
    assert epoch_order(50, seed=1, epoch=0, shuffle=False) == list(range(50))
    assert epoch_order(40, seed=0, epoch=1) != epoch_order(40, seed=1, epoch=0)  # not seed+epoch


def test_rank_shards_cover_the_set_with_equal_padded_lengths() -> None:
    n, world = 10, 3
    full = epoch_order(n, seed=4, epoch=2)
    shards = [epoch_order(n, seed=4, epoch=2, rank=r, world_size=world) for r in range(world)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set().union(*shards) == set(range(n))
    padded = full + full[:2]  # DistributedSampler pads by repeating the start
    assert shards == [padded[r::world] for r in range(world)]


def test_batches_follow_the_order_and_start_sample_gives_the_tail(twins: Path) -> None:
    ds = build_dataset(section(twins, load_size=24, crop_size=16), "train", seed=0)
    assert len_batches(ds, 4) == 2 and len_batches(ds, 2, world_size=4) == 1
    full = list(epoch_batches(ds, 2, seed=8, epoch=3))
    assert [b["A"].shape[0] for b in full] == [2, 2, 2]
    names = [Path(p).name for b in full for p in b["path"]]
    assert names == [f"{i:03d}.png" for i in epoch_order(6, seed=8, epoch=3)]
    tail = list(epoch_batches(ds, 2, seed=8, epoch=3, start_sample=2))
    assert len(tail) == 2
    for got, want in zip(tail, full[1:], strict=True):
        assert got["path"] == want["path"] and torch.equal(got["A"], want["A"])
    assert list(epoch_batches(ds, 2, seed=8, epoch=3, start_sample=6)) == []
    with pytest.raises(ValueError, match="start_sample"):
        epoch_batches(ds, 2, start_sample=7)
    short = list(epoch_batches(ds, 4, seed=8, epoch=3))  # not drop_last
    assert [b["A"].shape[0] for b in short] == [4, 2]


def test_a_resume_with_another_batch_or_world_size_visits_the_rest_once(twins: Path) -> None:
    ds = build_dataset(section(twins, load_size=24, crop_size=16), "train")
    order = epoch_order(6, seed=5, epoch=1)
    # two batches of 2 done on one rank; the rest with batch 1 on two ranks
    seen = [
        Path(p).name
        for rank in range(2)
        for b in epoch_batches(ds, 1, seed=5, epoch=1, rank=rank, world_size=2, start_sample=4)
        for p in b["path"]
    ]
    assert sorted(seen) == sorted(f"{i:03d}.png" for i in order[4:])
    # the same configuration continues exactly where the sharded order was
    for rank in range(2):
        whole = epoch_order(6, seed=5, epoch=1, rank=rank, world_size=2)
        assert epoch_order(6, seed=5, epoch=1, rank=rank, world_size=2, start=2) == whole[1:]


def test_rank_batches_cover_the_set(twins: Path) -> None:
    ds = build_dataset(section(twins, load_size=24, crop_size=16), "train")
    seen = []
    for rank in range(4):
        batches = list(epoch_batches(ds, 1, seed=2, epoch=0, rank=rank, world_size=4))
        assert len(batches) == len_batches(ds, 1, world_size=4) == 2
        seen += [p for b in batches for p in b["path"]]
    assert {Path(p).name for p in seen} == {f"{i:03d}.png" for i in range(6)}


def test_workers_give_the_same_batches_in_every_epoch(twins: Path) -> None:
    """Persistent workers must not keep a stale epoch: items depend on the epoch key."""
    ds = build_dataset(section(twins, load_size=24, crop_size=16), "train", seed=1)
    ds.set_epoch(0)  # a stale epoch in the dataset must not matter either
    for epoch in (0, 1):
        order = epoch_order(len(ds), seed=1, epoch=epoch)
        expected = torch.stack([ds[(epoch, i)]["A"] for i in order])
        for workers in (2, 0):
            batches = list(epoch_batches(ds, 2, seed=1, epoch=epoch, num_workers=workers))
            assert torch.equal(torch.cat([b["A"] for b in batches]), expected)
    ds.close()


def test_dataset_pickles_for_spawned_workers(twins: Path) -> None:
    ds = build_dataset(section(twins, load_size=24, crop_size=16), "train", seed=1)
    list(epoch_batches(ds, 2))  # creates a loader, which must not be pickled
    copy = pickle.loads(pickle.dumps(ds))
    assert copy._loaders == {} and torch.equal(copy[(4, 3)]["A"], ds[(4, 3)]["A"])


def test_batch_of_mixed_sizes_is_a_one_line_error(tmp_path: Path) -> None:
    write_aligned(tmp_path, "train", [(noise(8, 8, 0),) * 2, (noise(12, 8, 1),) * 2])
    ds = build_dataset(section(tmp_path, preprocess="none"), "train")
    with pytest.raises(DataError, match="mixes image sizes .*batch_size: 1"):
        list(epoch_batches(ds, 2, shuffle=False))
    assert len(list(epoch_batches(ds, 1))) == 2


def test_worker_errors_keep_their_one_line_message() -> None:
    wrapped = DataError(
        "Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 1, in f\nganzoo.errors.DataError: x.png: cannot read'
    )
    assert _first_line(wrapped) == "x.png: cannot read"


def test_split_roles_map_to_the_configured_folders(twins: Path) -> None:
    data = section(twins, train_split="val", val_split="train", load_size=24, crop_size=16)
    assert split_name(data, None, True) == "val" and split_name(data, None, False) == "train"
    assert split_name(data, "train", True) == "train"  # a configured name is taken literally
    assert split_name(section(twins, val_split="holdout"), "val", False) == "holdout"
    assert split_name(data, "test", False) == "test"
    assert len(build_dataset(section(twins, val_split="train"), "val", train=False)) == 6


# -- errors ----------------------------------------------------------------------------------
def build_error(data: DataSection, split: str = "train") -> str:
    with pytest.raises(DataError) as info:
        build_dataset(data, split)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_root(tmp_path: Path) -> None:
    message = build_error(section(tmp_path / "nowhere"))
    assert "nowhere does not exist" in message and "data.root" in message


def test_missing_split_lists_the_splits(twins: Path) -> None:
    message = build_error(section(twins), "test")
    assert "no split 'test'" in message and "splits found: train, val" in message


def test_empty_split(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images here")
    assert "train: no images" in build_error(section(tmp_path))
    (tmp_path / "train" / "A").mkdir()
    assert "paired_folders" in build_error(section(tmp_path))  # hints at the other layout


def test_odd_width_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    Image.fromarray(noise(8, 17, 0)).save(folder / "odd.png")
    message = build_error(section(tmp_path, preprocess="none"))
    assert "odd.png: width 17 is odd" in message


def _corrupt(twins: Path) -> Path:
    bad = twins / "train" / "002.png"
    bad.write_bytes(b"this is not an image")
    return bad


def test_corrupt_image_names_the_file(twins: Path) -> None:
    _corrupt(twins)
    message = build_error(section(twins, load_size=24, crop_size=16))
    assert "002.png: cannot read image" in message and "skip_corrupt" in message


@pytest.mark.parametrize("cache", [True, False])
def test_skip_corrupt_warns_and_skips(twins: Path, cache: bool) -> None:
    _corrupt(twins)
    data = section(twins, load_size=24, crop_size=16, skip_corrupt=True, cache=cache)
    with pytest.warns(DataWarning, match="002.png"):
        ds = build_dataset(data, "train")
    assert len(ds) == 5 and all("002.png" not in ds[i]["path"] for i in range(5))


def _truncate(twins: Path) -> Path:
    """A file whose header reads fine but whose pixels are cut off."""
    bad = twins / "train" / "004.png"
    bad.write_bytes(bad.read_bytes()[:200])
    return bad


def test_truncated_image_fails_when_decoded(twins: Path) -> None:
    _truncate(twins)
    assert "004.png: cannot read image" in build_error(section(twins, load_size=24, crop_size=16))
    lazy = build_dataset(section(twins, load_size=24, crop_size=16, cache=False), "train")
    with pytest.raises(DataError, match="004.png: cannot read image"):
        lazy[4]
    data = section(twins, load_size=24, crop_size=16, cache=False, skip_corrupt=True)
    with pytest.warns(DataWarning, match="004.png"):
        item = build_dataset(data, "train")[4]
    assert item["path"].endswith("004.png")  # the augmentation of index 4, pixels of 005
    with pytest.warns(DataWarning, match="004.png"):
        ds = build_dataset(section(twins, load_size=24, crop_size=16, skip_corrupt=True), "train")
    assert len(ds) == 5


def test_corrupt_image_in_a_worker_is_one_line(twins: Path) -> None:
    _truncate(twins)
    ds = build_dataset(section(twins, load_size=24, crop_size=16, cache=False), "train")
    with pytest.raises(DataError) as info:
        list(epoch_batches(ds, 6, num_workers=1))
    assert "\n" not in str(info.value) and "004.png: cannot read image" in str(info.value)
    ds.close()


def test_all_corrupt_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "x.jpg").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert "no readable image" in build_error(section(tmp_path, skip_corrupt=True))


def test_paired_folders_errors(tmp_path: Path) -> None:
    data = section(tmp_path, name="paired_folders", preprocess="none")
    (tmp_path / "train" / "A").mkdir(parents=True)
    Image.fromarray(noise(8, 8, 0)).save(tmp_path / "train/A/x.png")
    assert "no 'B' folder" in build_error(data)
    (tmp_path / "train" / "B").mkdir()
    Image.fromarray(noise(8, 8, 1)).save(tmp_path / "train/B/x.png")
    Image.fromarray(noise(8, 8, 2)).save(tmp_path / "train/B/lonely.png")
    message = build_error(data)
    assert "lonely.png has no partner" in message and "train/A" in message
    (tmp_path / "train/B/lonely.png").unlink()
    Image.fromarray(noise(8, 10, 1)).save(tmp_path / "train/B/x.png")
    message = build_error(data)
    assert "A/x.png is 8x8 but its partner" in message and "B/x.png is 8x10" in message
    Image.fromarray(noise(8, 8, 1)).save(tmp_path / "train/B/x.jpg")
    assert "same name without extension" in build_error(data)


def test_size_errors(twins: Path) -> None:
    assert "load_size 10 is smaller than data.crop_size 16" in build_error(
        section(twins, load_size=10, crop_size=16)
    )
    message = build_error(section(twins, preprocess="crop", crop_size=32))
    assert "000.png: image 20x20 is smaller than data.crop_size 32" in message
    message = build_error(section(twins, in_channels=2))
    assert "000.png: the file has 3 channel(s) but data.in_channels is 2" in message


# -- roots and embedded data -----------------------------------------------------------------
def test_resolve_root(tmp_path: Path) -> None:
    assert resolve_root(str(tmp_path)) == tmp_path
    assert resolve_root("embedded:facades").is_dir()
    with pytest.raises(DataError, match="no embedded dataset 'facade'.*facades"):
        resolve_root("embedded:facade")


def test_embedded_facades_sample() -> None:
    assert "facades" in embedded_names()
    folder = resolve_root("embedded:facades")
    assert (folder / "README.md").read_text().count("Tyle") == 1
    files = list(folder.rglob("*.jpg"))
    assert sum(f.stat().st_size for f in folder.rglob("*")) <= 3 * 2**20
    assert len(files) == 50
    data = DataSection(root="embedded:facades", direction="BtoA", num_workers=0)
    train = build_dataset(data, "train", train=True, seed=0)
    val = build_dataset(data, "val", train=False, seed=0)
    assert (len(train), len(val)) == (40, 10)
    item = train[0]
    assert item["A"].shape == item["B"].shape == (3, 256, 256)
    assert -1.0 <= float(item["A"].min()) and float(item["A"].max()) <= 1.0


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "facades").exists(), reason="needs ../shared/datasets")
def test_shared_facades_are_label_to_photo_with_btoa() -> None:
    data = DataSection(
        root=str(SHARED / "facades"), direction="BtoA", preprocess="none", flip=False, cache=False
    )
    train, val = build_dataset(data, "train"), build_dataset(data, "val", train=False)
    assert (len(train), len(val)) == (400, 100)
    item = train[0]
    whole = np.asarray(Image.open(item["path"]).convert("RGB"))
    assert whole.shape == (256, 512, 3)
    np.testing.assert_array_equal(to_uint8(item["A"]), whole[:, 256:])  # label map
    np.testing.assert_array_equal(to_uint8(item["B"]), whole[:, :256])  # photo
    embedded = resolve_root("embedded:facades") / "train" / "1.jpg"
    assert embedded.read_bytes() == (SHARED / "facades" / "train" / "1.jpg").read_bytes()


def test_pair_transform_rejects_unknown_preprocess() -> None:
    with pytest.raises(DataError, match="preprocess 'zoom' is unknown"):
        PairTransform("zoom", 286, (256, 256), True, True)
