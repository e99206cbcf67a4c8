"""Decoded images kept in memory: one flat byte buffer, so forked workers share it and a
spawned worker receives it as a single shared-memory tensor. Each image keeps its own dtype
(uint8, uint16, int32, int64, float32: 16-bit images are never narrowed to 8 bits)."""

from __future__ import annotations

import math

import torch

#: Offsets are multiples of this, so every image's bytes can be viewed as its dtype.
ALIGN = 8


class PackedImages:
    """Images of known shapes (C, H, W) and dtypes in one byte buffer; ``store[i]`` is a view."""

    def __init__(
        self, shapes: list[tuple[int, int, int]], dtypes: list[torch.dtype] | torch.dtype
    ) -> None:
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.dtypes = dtypes if isinstance(dtypes, list) else [dtypes] * len(shapes)
        self.offsets = [0]
        for shape, dtype in zip(self.shapes, self.dtypes):
            n = math.prod(shape) * dtype.itemsize
            self.offsets.append(self.offsets[-1] + -(-n // ALIGN) * ALIGN)
        self.buffer = torch.empty(self.offsets[-1], dtype=torch.uint8)

    @property
    def nbytes(self) -> int:
        return self.offsets[-1]

    def __len__(self) -> int:
        return len(self.shapes)

    def _slot(self, index: int) -> torch.Tensor:
        n = math.prod(self.shapes[index]) * self.dtypes[index].itemsize
        start = self.offsets[index]
        return self.buffer[start : start + n].view(self.dtypes[index])

    def __setitem__(self, index: int, image: torch.Tensor) -> None:
        if tuple(image.shape) != self.shapes[index] or image.dtype != self.dtypes[index]:
            raise ValueError(
                f"image {index}: {tuple(image.shape)} {image.dtype} != "
                f"{self.shapes[index]} {self.dtypes[index]}"
            )
        flat = self._slot(index).numpy()
        flat[:] = image.numpy().reshape(-1)  # numpy: no intra-op threads, safe in a thread pool

    def __getitem__(self, index: int) -> torch.Tensor:
        return self._slot(index).view(self.shapes[index])
