"""Paired datasets and their shared preprocessing (the registry registers the datasets).

The trainer's whole surface::

    ds = build_dataset(recipe.data, split="train", train=True, seed=recipe.seed)
    for batch in epoch_batches(ds, batch_size=4, seed=recipe.seed, epoch=e):
        batch["A"], batch["B"]  # (N, C, h, w) float32 in [-1, 1]; batch["path"]: list[str]
"""

import importlib
from typing import Any

#: Public name -> the module that defines it. Imported on first use, so that light commands
#: (``ganzoo data fetch``) do not pay for torch and torchvision; the registry imports
#: :mod:`ganzoo.data.aligned` and :mod:`ganzoo.data.folders` to register the datasets.
_EXPORTS = {
    "AlignedPairs": "ganzoo.data.aligned",
    "DataWarning": "ganzoo.data.dataset",
    "PairedDataset": "ganzoo.data.dataset",
    "build_dataset": "ganzoo.data.dataset",
    "split_name": "ganzoo.data.dataset",
    "embedded_names": "ganzoo.data.embedded",
    "resolve_root": "ganzoo.data.embedded",
    "PairedFolders": "ganzoo.data.folders",
    "IMAGE_EXTENSIONS": "ganzoo.data.images",
    "epoch_batches": "ganzoo.data.loader",
    "epoch_order": "ganzoo.data.loader",
    "len_batches": "ganzoo.data.loader",
    "ImageFilePairs": "ganzoo.data.source",
    "PairSource": "ganzoo.data.source",
    "PairTransform": "ganzoo.data.transforms",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ganzoo.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


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
