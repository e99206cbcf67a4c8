"""Loader throughput: images/s of ganzoo's data pipeline for 16-bit 4-channel TIFF pairs vs
8-bit RGB JPEG pairs, at the same size and loader settings, measured side by side in one run.

The pairs are generated into a temporary folder (paired_folders layout). Each configuration
is timed over whole epochs of ``epoch_batches`` (decode when ``--no-cache``, resize, random
crop and flip, range mapping, collation), alternating the two kinds epoch by epoch.

    python benchmarks/loader.py                       # 64 pairs of 256x256 (286 -> 256 jitter)
    python benchmarks/loader.py --no-cache --workers 2
    python benchmarks/loader.py --quick               # a tiny check that it runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from ganzoo.data import build_dataset, epoch_batches
from ganzoo.recipe import DataSection


def write_pairs(root: Path, kind: str, n: int, side: int) -> None:
    """``n`` pairs of side x side in root/train/{A,B}: 'tiff16' (uint16, 4 channels) or
    'jpeg8' (uint8 RGB, quality 95)."""
    rng = np.random.default_rng(0)
    for sub in ("A", "B"):
        (root / "train" / sub).mkdir(parents=True)
    for i in range(n):
        # smooth content (upsampled noise), so JPEG sizes are realistic
        small = rng.random((-(-side // 8), -(-side // 8), 4))
        base = np.kron(small, np.ones((8, 8, 1)))[:side, :side]
        for sub, x in (("A", base), ("B", 1 - base)):
            if kind == "tiff16":
                array = np.round(x * 65535).astype(np.uint16)
                tifffile.imwrite(root / "train" / sub / f"{i}.tif", array, photometric="rgb")
            else:
                array = np.round(x[..., :3] * 255).astype(np.uint8)
                Image.fromarray(array).save(root / "train" / sub / f"{i}.jpg", quality=95)


def section(root: Path, kind: str, args: argparse.Namespace) -> DataSection:
    channels = 4 if kind == "tiff16" else 3
    return DataSection(
        name="paired_folders",
        root=str(root),
        in_channels=channels,
        out_channels=channels,
        load_size=args.load_size,
        crop_size=args.size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        cache=args.cache,
    )


def epoch_seconds(ds, data: DataSection, epoch: int) -> float:
    t0 = time.perf_counter()
    for batch in epoch_batches(
        ds, data.batch_size, seed=0, epoch=epoch, num_workers=data.num_workers
    ):
        assert batch["A"].dtype == torch.float32
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--size", type=int, default=256, help="crop size (side)")
    parser.add_argument("--load-size", type=int, default=286, help="resize before the crop")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per kind")
    parser.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true", help="8 pairs of 32x32, 1 epoch")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.size, args.load_size, args.epochs = 8, 32, 36, 1
    kinds = ("jpeg8", "tiff16")
    with tempfile.TemporaryDirectory() as tmp:
        datasets = {}
        setup = {}
        for kind in kinds:
            root = Path(tmp) / kind
            write_pairs(root, kind, args.pairs, args.size)
            data = section(root, kind, args)
            t0 = time.perf_counter()
            datasets[kind] = (build_dataset(data, "train", seed=0), data)
            setup[kind] = time.perf_counter() - t0
        times: dict[str, list[float]] = {k: [] for k in kinds}
        for kind in kinds:  # warm-up epoch (starts workers)
            epoch_seconds(*datasets[kind], epoch=0)
        for epoch in range(1, args.epochs + 1):
            for kind in kinds:
                times[kind].append(epoch_seconds(*datasets[kind], epoch=epoch))
        for ds, _ in datasets.values():
            ds.close()
    print(
        f"{args.pairs} pairs of {args.size}x{args.size}, resized to {args.load_size} and "
        f"cropped to {args.size}, "
        f"batch {args.batch_size}, workers {args.workers}, cache {args.cache}, "
        f"torch {torch.__version__}"
    )
    print(f"{'kind':>8s} {'build s':>8s} {'images/s':>9s}")
    rates = {k: args.pairs / statistics.median(times[k]) for k in kinds}
    for kind in kinds:
        print(f"{kind:>8s} {setup[kind]:8.2f} {rates[kind]:9.1f}")
    print(f"tiff16 / jpeg8 throughput: {rates['tiff16'] / rates['jpeg8']:.2f}x")


if __name__ == "__main__":
    main()
