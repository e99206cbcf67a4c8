"""Batches of an epoch: a seeded order, rank sharding, resumption at a batch, DataLoader workers.

The order of epoch ``e`` is a permutation drawn from a torch.Generator seeded by (seed, e), so
every variant of an ablation sees the same order for a seed. With ``world_size`` > 1 the order
is padded to a multiple of world_size by repeating its start and rank r takes every
world_size-th sample from position r, like ``DistributedSampler(drop_last=False)``. A resumed
run starts at a *sample* position of the whole (padded) order, ``start_sample``: with the
batch size and world size of the interrupted run it continues exactly, and with other ones it
still visits every remaining sample once. The last batch may be short.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, default_collate, get_worker_info

from ganzoo.data.dataset import PairedDataset, shutdown_workers
from ganzoo.data.seeding import order_generator
from ganzoo.errors import DataError


def epoch_order(
    n: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    rank: int = 0,
    world_size: int = 1,
    start: int = 0,
) -> list[int]:
    """The dataset indices rank ``rank`` visits in ``epoch`` from sample position ``start`` of
    the padded order on, in order (ceil(n / world_size) of them when ``start`` is 0)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    if n == 0:
        return []
    if shuffle:
        order = torch.randperm(n, generator=order_generator(seed, epoch)).tolist()
    else:
        order = list(range(n))
    total = math.ceil(n / world_size) * world_size
    while len(order) < total:
        order += order[: total - len(order)]
    return order[start + rank : total : world_size]


def len_batches(ds: PairedDataset, batch_size: int, world_size: int = 1) -> int:
    """Batches per epoch on each rank (the last one may be short)."""
    return math.ceil(math.ceil(len(ds) / world_size) / batch_size) if len(ds) else 0


class EpochSampler(Sampler):
    """Yields (epoch, index) keys for :class:`PairedDataset`; reconfigured before each epoch.

    The key carries the epoch into the workers, so persistent workers stay correct.
    """

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size
        self.seed, self.epoch, self.shuffle, self.start = 0, 0, True, 0

    def configure(self, *, seed: int, epoch: int, shuffle: bool, start: int) -> None:
        self.seed, self.epoch, self.shuffle, self.start = seed, epoch, shuffle, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = epoch_order(
            self.n,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            rank=self.rank,
            world_size=self.world_size,
            start=self.start,
        )
        return iter([(self.epoch, i) for i in order])

    def __len__(self) -> int:
        total = math.ceil(self.n / self.world_size) * self.world_size
        return len(range(self.start + self.rank, total, self.world_size))


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack items into {"A": (N, C, h, w), "B": (N, C, h, w), "path": list[str]}."""
    shapes = {tuple(it[side].shape[-2:]) for it in items for side in ("A", "B")}
    if len(shapes) > 1:
        sizes = " and ".join(f"{h}x{w}" for h, w in sorted(shapes)[:2])
        raise DataError(
            f"a batch mixes image sizes {sizes} (e.g. {items[0]['path']}); with preprocess "
            "'none' or 'scale_width' images keep their own size: use data.batch_size: 1 or a "
            "cropping preprocess"
        )
    # in a worker, torch stacks straight into shared memory (no copy to send the batch); in
    # the main process numpy stacks on one thread (see ganzoo.data.transforms)
    in_worker = get_worker_info() is not None
    out: dict[str, Any] = {"path": [it["path"] for it in items]}
    for side in ("A", "B"):
        tensors = [it[side] for it in items]
        if in_worker:
            out[side] = default_collate(tensors)
        else:
            out[side] = torch.from_numpy(np.stack([t.numpy() for t in tensors]))
    return out


def _loader(
    ds: PairedDataset,
    batch_size: int,
    num_workers: int,
    pin_memory: bool,
    rank: int,
    world_size: int,
) -> DataLoader:
    """One DataLoader per configuration, kept on the dataset so its workers persist."""
    key = (batch_size, num_workers, pin_memory, rank, world_size)
    loader = ds._loaders.get(key)
    if loader is None:
        loader = DataLoader(
            ds,
            batch_size=batch_size,
            sampler=EpochSampler(len(ds), rank, world_size),
            num_workers=num_workers,
            collate_fn=collate_pairs,
            pin_memory=pin_memory and torch.cuda.is_available(),
            persistent_workers=num_workers > 0,
            drop_last=False,
            # its own generator: creating an iterator must not draw from the global torch RNG,
            # or a resumed run would see other dropout masks than an uninterrupted one
            generator=torch.Generator(),
        )
        ds._loaders[key] = loader
    return loader


def epoch_batches(
    ds: PairedDataset,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
    start_sample: int = 0,
) -> Iterator[dict[str, Any]]:
    """Batches {"A": (N, C, h, w), "B": (N, C, h, w) float32 in [-1, 1], "path": list[str]}
    of ``epoch`` for ``rank``, from sample position ``start_sample`` of the epoch on (counted
    over all ranks: ``batches done * batch_size * world_size``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    total = math.ceil(len(ds) / world_size) * world_size
    if not 0 <= start_sample <= total:
        raise ValueError(f"start_sample {start_sample} is not in [0, {total}] (samples per epoch)")
    loader = _loader(ds, batch_size, num_workers, pin_memory, rank, world_size)
    return _iterate(ds, loader, seed, epoch, shuffle, start_sample)


def _iterate(
    ds: PairedDataset, loader: DataLoader, seed: int, epoch: int, shuffle: bool, start: int
) -> Iterator[dict[str, Any]]:
    ds.set_epoch(epoch)
    loader.sampler.configure(seed=seed, epoch=epoch, shuffle=shuffle, start=start)
    message = None
    try:
        yield from loader
    except DataError as exc:  # from a worker: the message carries the worker's traceback
        message = _first_line(exc)
    if message is not None:
        # the worker's exception holds the iterator in a reference cycle; stop its workers now
        # rather than whenever the garbage collector gets to it (then it takes seconds)
        shutdown_workers(loader)
        raise DataError(message)


def _first_line(exc: DataError) -> str:
    """The original one-line message of a DataError re-raised by a DataLoader worker."""
    text = str(exc)
    marker = f"{DataError.__module__}.{DataError.__name__}: "
    for line in reversed(text.splitlines()):
        if line.startswith(marker):
            return line[len(marker) :]
    return text.splitlines()[0] if text else "data loading failed"
