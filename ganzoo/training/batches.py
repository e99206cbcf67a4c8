"""Where the trainer's batches come from: the recipe's dataset, or batches given in memory.

A :class:`BatchSource` serves an epoch from a sample position on; the trainer keeps that
position (samples of the epoch done, over all ranks) in its checkpoints::

    source.epoch(epoch, start_sample)  # -> iterable of {"A": (N, C, h, w), "B": ..., ...}
    source.batches_per_epoch           # batches a whole epoch has on this rank
    source.samples_per_batch           # samples one step consumes over all ranks
    source.samples_per_epoch           # samples of a whole epoch over all ranks (padded)

:class:`DatasetBatches` is what a recipe trains on. :class:`GivenBatches` feeds fixed tensors
(the upstream-parity tests use it to replay a recorded trajectory through the real trainer).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch

from ganzoo.data import PairedDataset, epoch_batches, len_batches
from ganzoo.errors import TrainingError

Batch = dict[str, Any]


class BatchSource(Protocol):
    """An epoch of batches from a sample position on (see the module docstring)."""

    batches_per_epoch: int
    samples_per_batch: int
    samples_per_epoch: int

    def epoch(self, epoch: int, start_sample: int) -> Iterable[Batch]: ...


#: ``data.num_workers: auto`` where the batches are not assembled from the in-memory cache
#: by a CPU process, or the network trains on an accelerator
AUTO_WORKERS = 2


def loader_workers(requested: int | str, device: torch.device, cached: bool) -> int:
    """The loader workers ``data.num_workers`` asks for; ``auto``: none when a CPU trains on
    cached data (a batch of cached pairs takes under a millisecond to assemble, and worker
    processes compete with the step's compute threads for the same cores: measured in
    docs/performance.md), :data:`AUTO_WORKERS` otherwise."""
    if requested != "auto":
        return int(requested)
    return 0 if device.type == "cpu" and cached else AUTO_WORKERS


def usable_workers(requested: int) -> int:
    """``requested`` loader workers, at most one per CPU this process may use (said once, in
    one line; PyTorch would warn of over-subscription at every loader it builds). The batches
    do not depend on the worker count."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if requested > cpus:
        warnings.warn(
            f"data.num_workers {requested} is more than the {cpus} CPU(s) this process may use; "
            f"using {cpus} loader workers",
            stacklevel=3,
        )
        return cpus
    return requested


class DatasetBatches:
    """Batches of a :class:`~ganzoo.data.PairedDataset`: a seeded order per epoch, sharded
    over ranks, DataLoader workers (see :func:`ganzoo.data.epoch_batches`)."""

    def __init__(
        self,
        dataset: PairedDataset,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_workers = usable_workers(num_workers)
        self.pin_memory = pin_memory
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = len_batches(dataset, batch_size, world_size)
        self.samples_per_batch = batch_size * world_size
        self.samples_per_epoch = math.ceil(len(dataset) / world_size) * world_size

    def epoch(self, epoch: int, start_sample: int = 0) -> Iterable[Batch]:
        return epoch_batches(
            self.dataset,
            self.batch_size,
            shuffle=self.shuffle,
            seed=self.seed,
            epoch=epoch,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            rank=self.rank,
            world_size=self.world_size,
            start_sample=start_sample,
        )

    def close(self) -> None:
        """Stop the loader's persistent workers."""
        self.dataset.close()


class GivenBatches:
    """Fixed batches: ``epochs[e]`` is the list of batches of epoch ``e`` (the last list is
    repeated for later epochs). Every batch is ``{"A": (N, Ca, h, w), "B": (N, Cb, h, w)}``
    in [-1, 1], all of one batch size N."""

    def __init__(self, epochs: Sequence[Sequence[Batch]]) -> None:
        if not epochs or not all(epochs):
            raise TrainingError("GivenBatches needs at least one non-empty epoch of batches")
        self.epochs = [list(e) for e in epochs]
        counts = {len(e) for e in self.epochs}
        sizes = {int(torch.as_tensor(b["A"]).shape[0]) for e in self.epochs for b in e}
        if len(counts) != 1 or len(sizes) != 1:
            raise TrainingError("GivenBatches: every epoch needs as many batches of one size")
        self.batches_per_epoch = counts.pop()
        self.samples_per_batch = sizes.pop()
        self.samples_per_epoch = self.batches_per_epoch * self.samples_per_batch

    def epoch(self, epoch: int, start_sample: int = 0) -> Iterable[Batch]:
        if start_sample % self.samples_per_batch:
            raise TrainingError(
                f"GivenBatches cannot start at sample {start_sample}: not a whole number of "
                f"batches of {self.samples_per_batch}"
            )
        batches = self.epochs[min(epoch, len(self.epochs) - 1)]
        return batches[start_sample // self.samples_per_batch :]

    def close(self) -> None:
        pass
