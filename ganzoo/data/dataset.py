"""A registered pair source + the shared preprocessing = the dataset the trainer iterates."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch.utils.data import Dataset

from ganzoo import registry
from ganzoo.data.embedded import resolve_root
from ganzoo.data.labels import LabelMaps
from ganzoo.data.ranges import SideRange
from ganzoo.data.seeding import item_rng
from ganzoo.data.source import PairSource
from ganzoo.data.store import PackedImages
from ganzoo.data.transforms import Encoder, PairTransform
from ganzoo.errors import DataError

if TYPE_CHECKING:
    from ganzoo.recipe import DataSection

T = TypeVar("T")


class DataWarning(UserWarning):
    """A skipped image (``data.skip_corrupt: true``)."""


@dataclass(frozen=True)
class PairValues:
    """How file values become network values: a range per side, or label maps for A."""

    a: SideRange = SideRange("A")
    b: SideRange = SideRange("B")
    labels: LabelMaps | None = None

    def check(self, a: torch.Tensor, b: torch.Tensor, paths: tuple[str, str]) -> None:
        """One-line DataErrors naming the file (of ``paths``: A's, B's) for values outside a
        range, or ids that are no class."""
        if self.labels is not None:
            self.labels.check(a.numpy(), paths[0])
        else:
            self.a.check(a.numpy(), paths[0])
        self.b.check(b.numpy(), paths[1])

    def encoders(self, paths: tuple[str, str]) -> tuple[Encoder, Encoder]:
        """Cropped (C, h, w) arrays -> float32: one-hot (0/1) or [-1, 1]."""
        b = partial(self.b.to_unit, path=paths[1])
        if self.labels is not None:
            return self.labels.encode, b
        return partial(self.a.to_unit, path=paths[0]), b


class PairedDataset(Dataset):
    """Preprocessed pairs: ``ds[i]`` -> {"A": (in_channels, h, w), "B": (out_channels, h, w),
    "path": str}, float32 in [-1, 1] (a label-map A: one-hot channels of 0 and 1).

    The crop and flip of item ``i`` are a pure function of (seed, epoch, i); ``ds[(epoch, i)]``
    names the epoch explicitly (the loader does this, so persistent workers never see a stale
    epoch), ``ds[i]`` uses the one set by :meth:`set_epoch`.
    """

    def __init__(
        self,
        source: PairSource,
        transform: PairTransform,
        indices: Sequence[int],
        *,
        seed: int = 0,
        store: tuple[PackedImages, PackedImages] | None = None,
        skip_corrupt: bool = False,
        values: PairValues = PairValues(),
    ) -> None:
        self.source = source
        self.transform = transform
        self.indices = list(indices)  # positions in ``source`` of the readable pairs
        self.seed = seed
        self.epoch = 0
        self.store = store
        self.skip_corrupt = skip_corrupt
        self.values = values
        self._loaders: dict[tuple[Any, ...], Any] = {}  # see ganzoo.data.loader

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def path(self, i: int) -> str:
        return self.source.path(self.indices[i])

    def prepared(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``i`` decoded, checked and resized (its file's dtype, before the random crop
        and flip)."""
        if self.store is not None:
            return self.store[0][i], self.store[1][i]
        for step in range(len(self)):
            k = (i + step) % len(self)
            try:
                a, b = load_checked(self.source, self.values, self.indices[k])
            except DataError as exc:
                if not self.skip_corrupt:
                    raise
                warnings.warn(
                    f"data.skip_corrupt: {_what(exc)}; using the next pair instead",
                    DataWarning,
                    stacklevel=2,
                )
                continue
            return prepare_pair(self.transform, self.values, a, b)
        raise DataError(f"no readable image left in the split of {self.path(i)}")

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} pairs")
        a, b = self.prepared(i)
        encoders = self.values.encoders(pair_paths(self.source, self.indices[i]))
        a, b = self.transform.augment(a, b, item_rng(self.seed, epoch, i), encoders)
        return {"A": a, "B": b, "path": self.path(i)}

    def close(self) -> None:
        """Stop the persistent loader workers of this dataset (they also stop with it)."""
        for loader in self._loaders.values():
            shutdown_workers(loader)
        self._loaders.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_loaders"] = {}  # a worker gets the data, not the loaders
        return state


def load_checked(
    source: PairSource, values: PairValues, index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair ``index`` decoded, its values checked (ranges, class ids)."""
    a, b = source.load(index)
    values.check(a, b, pair_paths(source, index))
    return a, b


def pair_paths(source: PairSource, index: int) -> tuple[str, str]:
    """(input file, target file) of pair ``index``, for errors (``source.path`` for both when
    the source does not name them apart)."""
    paths = getattr(source, "paths", None)
    if paths is None:
        path = source.path(index)
        return path, path
    return paths(index)


def prepare_pair(
    transform: PairTransform, values: PairValues, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic resize of both sides (nearest for label maps)."""
    return transform.prepare(a, nearest=values.labels is not None), transform.prepare(b)


def shutdown_workers(loader: Any) -> None:
    """Stop the persistent workers of a DataLoader now (the next iteration starts new ones)."""
    iterator = getattr(loader, "_iterator", None)  # torch keeps persistent workers there
    if iterator is not None:
        loader._iterator = None
        stop = getattr(iterator, "_shutdown_workers", None)
        if stop is not None:
            stop()


def split_name(data: DataSection, split: str | None, train: bool) -> str:
    """The folder of a split. None: data.train_split or data.val_split, by ``train``. The
    roles 'train' and 'val' map to data.train_split and data.val_split (unless that name is
    itself one of the two configured splits); any other name is a folder name."""
    if split is None:
        return data.train_split if train else data.val_split
    if split in (data.train_split, data.val_split):
        return split
    return {"train": data.train_split, "val": data.val_split}.get(split, split)


def build_dataset(
    data: DataSection, split: str | None = None, *, train: bool = True, seed: int = 0
) -> PairedDataset:
    """The dataset of one split, from a recipe's ``data`` section.

    ``train`` picks random crops and flips (else the deterministic evaluation geometry, see
    :mod:`ganzoo.data.transforms`). With ``data.cache`` every pair is decoded and resized once,
    here, and kept in memory in its files' dtype.
    """
    crop = data.image_size
    transform = PairTransform(
        preprocess=data.preprocess,
        load_size=data.load_size,
        crop=(int(crop[0]), int(crop[1])),
        flip=data.flip,
        train=train,
    )
    source = registry.create(
        "dataset",
        data.name,
        root=resolve_root(data.root),
        split=split_name(data, split, train),
        in_channels=data.in_channels,
        out_channels=data.out_channels,
        **data.params,
    )
    limit = getattr(source, "limit_pixels", None)  # sources reading files through formats
    if limit is not None:
        limit(data.max_pixels)
    values = pair_values(data)
    if values.labels is not None:
        use = getattr(source, "use_label_maps", None)
        if use is None:
            raise DataError(
                f"data.labels: the dataset '{data.name}' does not read label maps; use "
                "data.name: paired_folders"
            )
        use(instance=values.labels.instance)
    if len(source) == 0:
        raise DataError(f"data.root {data.root}: split '{split_name(data, split, train)}' is empty")

    def check(k: int) -> tuple[int, int]:
        h, w = source.size(k)
        transform.check_size(h, w, source.path(k))
        return h, w

    sizes = _keep_readable(source, range(len(source)), check, data.skip_corrupt)
    store = None
    if data.cache and sizes:
        sizes, store = _decode_all(source, transform, values, sizes, data.skip_corrupt)
    if not sizes:
        raise DataError(
            f"data.root {data.root}: no readable image in split '{split_name(data, split, train)}'"
        )
    return PairedDataset(
        source,
        transform,
        list(sizes),
        seed=seed,
        store=store,
        skip_corrupt=data.skip_corrupt,
        values=values,
    )


def pair_values(data: DataSection) -> PairValues:
    """The value rules of a recipe's data section (ranges, clip, label maps)."""
    ranges = data.range
    labels = None
    if data.labels is not None:
        spec = data.labels
        labels = LabelMaps(
            spec.num_classes, spec.ignore_index, spec.instance, spec.dontcare_channel
        )
    return PairValues(
        SideRange("A", ranges.A if ranges else None, data.clip),
        SideRange("B", ranges.B if ranges else None, data.clip),
        labels,
    )


def _parallel(fn: Callable[[int], T], indices: Sequence[int]) -> list[T | DataError]:
    """``fn`` over ``indices`` on a few threads (decoding releases the GIL); DataErrors returned."""

    def guarded(k: int) -> T | DataError:
        try:
            return fn(k)
        except DataError as exc:
            return exc

    workers = min(8, os.cpu_count() or 1)
    if workers == 1 or len(indices) < 8:
        return [guarded(k) for k in indices]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(guarded, indices))


def _keep_readable(
    source: PairSource, indices: Sequence[int], fn: Callable[[int], T], skip: bool
) -> dict[int, T]:
    """{index: fn(index)} for the pairs where ``fn`` succeeds; the first failure raises unless
    ``skip``, which warns once per skipped file."""
    kept: dict[int, T] = {}
    for k, result in zip(indices, _parallel(fn, indices), strict=True):
        if isinstance(result, DataError):
            if not skip:
                raise result
            warnings.warn(f"data.skip_corrupt: skipping {_what(result)}", DataWarning, stacklevel=3)
            continue
        kept[k] = result
    return kept


def _decode_all(
    source: PairSource,
    transform: PairTransform,
    values: PairValues,
    sizes: dict[int, tuple[int, int]],
    skip: bool,
) -> tuple[dict[int, tuple[int, int]], tuple[PackedImages, PackedImages]]:
    """Decode and resize every pair once into two packed stores (A and B), each in the dtype
    and channels of its side's files (read from the first pair: all must agree)."""
    prepared = {k: transform.prepared_size(*hw) for k, hw in sizes.items()}
    order = list(sizes)
    first = _first_readable(source, values, order, skip)
    if first is None:
        return {}, (PackedImages([], torch.uint8), PackedImages([], torch.uint8))
    kinds = [(int(x.shape[0]), x.dtype) for x in first[1]]
    store_a = PackedImages([(kinds[0][0], *prepared[k]) for k in order], kinds[0][1])
    store_b = PackedImages([(kinds[1][0], *prepared[k]) for k in order], kinds[1][1])
    _check_memory(store_a.nbytes + store_b.nbytes, len(order))
    slot = {k: j for j, k in enumerate(order)}

    def fill(k: int) -> tuple[int, int]:
        a, b = load_checked(source, values, k)
        for x, (channels, dtype), side in zip((a, b), kinds, "AB"):
            if x.dtype != dtype or x.shape[0] != channels:
                raise DataError(
                    f"{source.path(k)}: its {side} side is {x.shape[0]} channel(s) of "
                    f"{str(x.dtype)[6:]} but {source.path(first[0])} has {channels} of "
                    f"{str(dtype)[6:]}; the files of one side of a split share depth and "
                    "channels (or set data.cache: false)"
                )
        a, b = prepare_pair(transform, values, a, b)
        if a.shape[-2:] != b.shape[-2:]:
            raise DataError(f"{source.path(k)}: A and B differ in size after decoding")
        store_a[slot[k]], store_b[slot[k]] = a, b
        return sizes[k]

    kept = _keep_readable(source, order, fill, skip)
    if len(kept) == len(order):
        return kept, (store_a, store_b)
    # rare: files that passed the header check but fail to decode; repack without them
    keep = [k for k in order if k in kept]
    packed = []
    for store, (channels, dtype) in zip((store_a, store_b), kinds):
        new = PackedImages([(channels, *prepared[k]) for k in keep], dtype)
        for j, k in enumerate(keep):
            new[j] = store[slot[k]]
        packed.append(new)
    return kept, (packed[0], packed[1])


def _first_readable(
    source: PairSource, values: PairValues, order: Sequence[int], skip: bool
) -> tuple[int, tuple[torch.Tensor, torch.Tensor]] | None:
    """(index, decoded pair) of the first readable pair (None: none is, with ``skip``)."""
    for k in order:
        try:
            return k, load_checked(source, values, k)
        except DataError:
            if not skip:
                raise
    return None


def _what(exc: DataError) -> str:
    """The part of a DataError that says what is wrong (before the advice)."""
    return str(exc).split("; ")[0]


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(nbytes: int, count: int) -> None:
    free = _available_memory()
    if free is not None and nbytes > free // 2:
        raise DataError(
            f"caching {count} decoded pairs needs {nbytes / 2**30:.1f} GiB but only "
            f"{free / 2**30:.1f} GiB of memory is available; set data.cache: false"
        )
