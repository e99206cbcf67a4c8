"""Value ranges: file values (any dtype) <-> the networks' [-1, 1], per side and channel.

The range of a side is declared in the recipe (``data.range: {A: [lo, hi], B: [[lo, hi], ...]}``,
one pair for every channel or one pair per channel) or follows the dtype: uint8 [0, 255],
uint16 [0, 65535]; other dtypes (32-bit integers, floats) need a declared range. ``lo`` maps
to -1 and ``hi`` to 1. A value outside the range is a one-line DataError unless
``data.clip: true`` clips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ganzoo.errors import DataError

#: One [lo, hi] for all channels, or one per channel.
RangeSpec = tuple[float, float] | Sequence[tuple[float, float]]
#: The ranges implied by a dtype when none is declared.
DTYPE_RANGES = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0)}


def _pairs(spec: RangeSpec | None) -> list[tuple[float, float]] | None:
    if spec is None:
        return None
    first = spec[0]
    if isinstance(first, (int, float)):
        return [(float(spec[0]), float(spec[1]))]  # type: ignore[arg-type]
    return [(float(lo), float(hi)) for lo, hi in spec]  # type: ignore[misc]


def output_dtype_for_labels(spec: RangeSpec | None) -> np.dtype:
    """The dtype of a label-map model's outputs (its input, class ids, says nothing about the
    target's depth): uint8, or uint16 / float32 when ``data.range.B`` needs more."""
    pairs = _pairs(spec)
    if not pairs:
        return np.dtype(np.uint8)
    lo, hi = min(p[0] for p in pairs), max(p[1] for p in pairs)
    whole = all(float(v).is_integer() for pair in pairs for v in pair)
    if whole and lo >= 0 and hi <= 255:
        return np.dtype(np.uint8)
    if whole and lo >= 0 and hi <= 65535:
        return np.dtype(np.uint16)
    return np.dtype(np.float32)


@dataclass(frozen=True)
class SideRange:
    """The value rule of one side: ``side`` names it in errors ('A' is the network input)."""

    side: str
    spec: RangeSpec | None = None
    clip: bool = False

    def bounds(self, dtype: np.dtype, channels: int, path: str) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) as float32 arrays of shape (C, 1, 1) for a file of ``dtype``."""
        pairs = _pairs(self.spec)
        if pairs is None:
            default = DTYPE_RANGES.get(np.dtype(dtype).name)
            if default is None:
                raise DataError(
                    f"{path}: {np.dtype(dtype).name} values have no implied range; declare it, "
                    f"e.g. data.range: {{{self.side}: [0, 1]}} (see docs/data.md)"
                )
            pairs = [default]
        if len(pairs) == 1:
            pairs = pairs * channels
        if len(pairs) != channels:
            raise DataError(
                f"{path}: data.range.{self.side} gives {len(pairs)} [lo, hi] pairs but the image "
                f"has {channels} channels; give one pair, or one per channel"
            )
        lo = np.array([p[0] for p in pairs], np.float32).reshape(-1, 1, 1)
        hi = np.array([p[1] for p in pairs], np.float32).reshape(-1, 1, 1)
        return lo, hi

    def check(self, array: np.ndarray, path: str) -> None:
        """A one-line DataError naming file, value and range when a value of ``array`` (C, H, W)
        is outside the range (or NaN), unless ``clip``."""
        if self.spec is None and array.dtype.name in DTYPE_RANGES:
            return
        if array.dtype.kind == "f" and np.isnan(array).any():  # no range or clip maps NaN
            raise DataError(
                f"{path}: holds NaN values, which no data.range or data.clip can map; replace "
                "them in the file (e.g. numpy.nan_to_num) or leave the file out"
            )
        if self.clip:
            return
        lo, hi = self.bounds(array.dtype, array.shape[0], path)
        flat = array.reshape(array.shape[0], -1)
        low, high = flat.min(axis=1), flat.max(axis=1)
        for c in range(array.shape[0]):
            bad = low[c] if low[c] < lo[c, 0, 0] else high[c] if high[c] > hi[c, 0, 0] else None
            if bad is not None:
                where = f" channel {c}" if array.shape[0] > 1 else ""
                raise DataError(
                    f"{path}: value {bad:g} in{where or ' the image'} is outside data.range."
                    f"{self.side} [{lo[c, 0, 0]:g}, {hi[c, 0, 0]:g}]; widen the range or set "
                    "data.clip: true"
                )

    def to_unit(self, array: np.ndarray, path: str) -> np.ndarray:
        """(C, h, w) of any dtype -> float32 in [-1, 1] ((x - lo) / ((hi - lo) / 2) - 1,
        clipped: clip mode, and a bicubic resize's overshoot)."""
        if self.spec is None and array.dtype == np.uint8:  # the reference x / 127.5 - 1
            y = array.astype(np.float32, order="C")
            y /= np.float32(127.5)
            y -= np.float32(1.0)
            return y
        lo, hi = self.bounds(array.dtype, array.shape[0], path)
        y = array.astype(np.float32, order="C")
        y -= lo
        y /= (hi - lo) / np.float32(2)
        y -= np.float32(1.0)
        np.clip(y, -1.0, 1.0, out=y)
        return y

    def from_unit(self, x: np.ndarray, dtype: np.dtype, path: str) -> np.ndarray:
        """float (C, h, w) in [-1, 1] -> values of ``dtype`` in this side's range.

        Integer dtypes round; they use the declared range when it fits the dtype (a range
        that does not is an error) and is wider than 1, else the dtype's full scale. Floats
        use the declared range, else [0, 1].
        """
        dtype = np.dtype(dtype)
        c = x.shape[0]
        pairs = _pairs(self.spec)
        if dtype.kind == "f":
            lo, hi = self.bounds(dtype, c, path) if pairs else (np.float32(0), np.float32(1))
        elif pairs and max(h - lo for lo, h in pairs) > 1:
            lo, hi = self.bounds(dtype, c, path)
            info = np.iinfo(dtype)
            if lo.min() < info.min or hi.max() > info.max:
                fits16 = lo.min() >= 0 and hi.max() <= 65535 and dtype != np.uint16
                raise DataError(
                    f"{path}: data.range.{self.side} [{lo.min():g}, {hi.max():g}] does not fit "
                    f"{dtype.name}; write float32 files with --format tiff32 or npy32"
                    + (" (or 16 bits with --format png16)" if fits16 else "")
                )
        else:
            info = np.iinfo(dtype)
            lo, hi = np.float32(0), np.float32(DTYPE_RANGES.get(dtype.name, (0, info.max))[1])
        # float32 for 8/16 bits gives exactly the reference's (x + 1) * 127.5 for uint8
        work = np.float32 if dtype.itemsize <= 2 else np.float64
        half = (np.asarray(hi, work) - np.asarray(lo, work)) / work(2)
        y = (np.clip(x.astype(work), -1, 1) + work(1)) * half + np.asarray(lo, work)
        if dtype.kind == "f":
            return y.astype(dtype)
        return np.round(y).astype(dtype)
