"""Semantic label maps as network input (pix2pixHD / SPADE): class ids -> one-hot channels.

A label map is a single-channel file (PNG 8/16-bit, TIFF, ``.npy``) of class ids. The network
sees its one-hot encoding, ``num_classes`` channels of 0 or 1 (the ``ignore_index`` id is all
zero, or has a channel of its own after the classes with ``dontcare_channel``: SPADE's
``contain_dontcare_label``), plus one instance-edge channel when ``instance`` is on:
pix2pixHD's ``get_edges``, a pixel is an edge (1) where its instance id differs from one of
its 4 neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganzoo.errors import DataError


@dataclass(frozen=True)
class LabelMaps:
    """The label rule of the input side: ids 0 .. num_classes - 1, plus ``ignore_index``."""

    num_classes: int
    ignore_index: int | None = 255
    instance: bool = False
    dontcare_channel: bool = False

    @property
    def channels(self) -> int:
        """The network's input channels: one per class, the don't-care channel, the instance
        edges."""
        return self.num_classes + int(self.dontcare_channel) + int(self.instance)

    @property
    def file_channels(self) -> int:
        """Channels of the stored map: the ids, plus the instance ids when ``instance``."""
        return 1 + int(self.instance)

    def check(self, ids: np.ndarray, path: str) -> None:
        """A one-line DataError naming ``path`` and the id when channel 0 of ``ids`` (C, H, W)
        holds a value that is not a class id (nor the ignore id)."""
        labels = ids[0]
        if labels.dtype.kind == "f":
            if not np.array_equal(labels, np.round(labels)):
                raise DataError(
                    f"{path}: a label map of non-integer values (e.g. "
                    f"{labels[labels != np.round(labels)].flat[0]:g}); class ids are integers"
                )
        outside = (labels < 0) | (labels >= self.num_classes)  # linear passes, no sort
        if self.ignore_index is not None:
            outside &= labels != self.ignore_index
        if outside.any():
            bad = np.unique(labels[outside])
            ignore = "" if self.ignore_index is None else f" nor the ignore id {self.ignore_index}"
            raise DataError(
                f"{path}: class id {bad[-1]:g} is not below data.labels.num_classes "
                f"{self.num_classes}{ignore}; raise num_classes or set data.labels.ignore_index"
            )

    def encode(self, ids: np.ndarray) -> np.ndarray:
        """(1 or 2, h, w) ids (and instance ids) -> float32 (channels, h, w) of 0 and 1."""
        labels = ids[0].astype(np.int64)
        out = np.zeros((self.channels, *labels.shape), np.float32)
        valid = (labels >= 0) & (labels < self.num_classes)
        rows, cols = np.nonzero(valid)
        out[labels[rows, cols], rows, cols] = 1.0
        if self.dontcare_channel and self.ignore_index is not None:
            out[self.num_classes][labels == self.ignore_index] = 1.0
        if self.instance:
            out[-1] = instance_edges(ids[1])
        return out


def instance_edges(instance: np.ndarray) -> np.ndarray:
    """(h, w) instance ids -> float32 (h, w): 1 where a 4-neighbour has another id (pix2pixHD
    ``get_edges``), else 0."""
    edge = np.zeros(instance.shape, bool)
    horizontal = instance[:, 1:] != instance[:, :-1]
    vertical = instance[1:, :] != instance[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge.astype(np.float32)
