"""Random streams that are pure functions of (seed, epoch[, index]): no global RNG anywhere.

The same numbers come out in the main process and in any DataLoader worker, on every
platform, so every variant of an ablation sees the same data order and the same crops, and a
resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np
import torch

_U64 = 2**64
_ORDER, _ITEM = 0x6F72, 0x6974  # domain tags, so the two streams never coincide


def _words(*values: int) -> list[int]:
    return [int(v) % _U64 for v in values]  # SeedSequence needs non-negative integers


def order_generator(seed: int, epoch: int) -> torch.Generator:
    """The torch.Generator that draws the sample order of ``epoch``."""
    state = np.random.SeedSequence(_words(_ORDER, seed, epoch)).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator that draws the crop and flip of item ``index`` in ``epoch``."""
    return np.random.default_rng(np.random.SeedSequence(_words(_ITEM, seed, epoch, index)))
