"""Decoded images kept in memory: one flat uint8 buffer, so forked workers share it and a
spawned worker receives it as a single shared-memory tensor."""

from __future__ import annotations

import math

import torch


class PackedImages:
    """Images of known shapes (C, H, W) in one uint8 buffer; ``store[i]`` is a view."""

    def __init__(self, shapes: list[tuple[int, int, int]]) -> None:
        sizes = [math.prod(s) for s in shapes]
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.offsets = [0]
        for n in sizes:
            self.offsets.append(self.offsets[-1] + n)
        self.buffer = torch.empty(self.offsets[-1], dtype=torch.uint8)

    @property
    def nbytes(self) -> int:
        return self.offsets[-1]

    def __len__(self) -> int:
        return len(self.shapes)

    def __setitem__(self, index: int, image: torch.Tensor) -> None:
        if tuple(image.shape) != self.shapes[index]:
            raise ValueError(f"image {index}: shape {tuple(image.shape)} != {self.shapes[index]}")
        flat = self.buffer.numpy()[self.offsets[index] : self.offsets[index + 1]]
        flat[:] = image.numpy().reshape(-1)  # numpy: no intra-op threads, safe in a thread pool

    def __getitem__(self, index: int) -> torch.Tensor:
        flat = self.buffer[self.offsets[index] : self.offsets[index + 1]]
        return flat.view(self.shapes[index])
