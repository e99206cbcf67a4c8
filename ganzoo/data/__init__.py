"""Paired datasets and their shared preprocessing; importing this package registers the datasets.

The trainer's whole surface::

    ds = build_dataset(recipe.data, split="train", train=True, seed=recipe.seed)
    for batch in epoch_batches(ds, batch_size=4, seed=recipe.seed, epoch=e):
        batch["A"], batch["B"]  # (N, C, h, w) float32 in [-1, 1]; batch["path"]: list[str]
"""

from ganzoo.data import aligned, folders  # noqa: F401  (registers the datasets)
from ganzoo.data.aligned import AlignedPairs
from ganzoo.data.dataset import DataWarning, PairedDataset, build_dataset, split_name
from ganzoo.data.embedded import embedded_names, resolve_root
from ganzoo.data.folders import PairedFolders
from ganzoo.data.images import IMAGE_EXTENSIONS
from ganzoo.data.loader import epoch_batches, epoch_order, len_batches
from ganzoo.data.source import ImageFilePairs, PairSource
from ganzoo.data.transforms import PairTransform

__all__ = [
    "IMAGE_EXTENSIONS",
    "AlignedPairs",
    "DataWarning",
    "ImageFilePairs",
    "PairSource",
    "PairTransform",
    "PairedDataset",
    "PairedFolders",
    "build_dataset",
    "embedded_names",
    "epoch_batches",
    "epoch_order",
    "len_batches",
    "resolve_root",
    "split_name",
]
