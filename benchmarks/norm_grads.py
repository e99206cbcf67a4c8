"""Batch norm's CPU backward handed the gradient a U-Net's skip concatenation gives it (a
strided slice) vs the same gradient made dense first (``ganzoo.nn.norm_layouts``), for
the up-blocks' norms of unet_256 at 256x256, interleaved shape by shape.

    python benchmarks/norm_grads.py                # bf16, channels_last, batch 1
    python benchmarks/norm_grads.py --fp32 --batch 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

# (channels, side) of unet_256's up-block outputs (each normed, then concatenated with its skip)
SHAPES = [(64, 128), (128, 64), (256, 32), (512, 16), (512, 8)]


def strided_vs_dense_ms(
    shape: tuple[int, ...], dtype: torch.dtype, repeats: int
) -> tuple[float, float]:
    """Median ms of BN's backward handed the skip's strided slice vs it copied dense first."""
    layout, c = torch.channels_last, shape[1]
    x = torch.randn(shape).to(dtype).contiguous(memory_format=layout)
    weight, bias = torch.rand(c) + 0.5, torch.zeros(c)
    mean, var = torch.zeros(c), torch.ones(c)
    _, save_mean, save_invstd = torch.native_batch_norm(x, weight, bias, mean, var, True, 0.1, 1e-5)
    cat = torch.randn(shape[0], 2 * c, *shape[2:]).to(dtype)
    strided = cat.contiguous(memory_format=layout)[:, c:]  # the skip's slice

    def backward(dense: bool) -> float:
        t0 = time.perf_counter()
        grad = strided.contiguous(memory_format=layout) if dense else strided
        torch.ops.aten.native_batch_norm_backward(
            grad, x, weight, mean, var, save_mean, save_invstd, True, 1e-5, [True] * 3
        )
        return 1000 * (time.perf_counter() - t0)

    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(repeats + 3):
        for dense in (False, True) if i % 2 == 0 else (True, False):
            ms = backward(dense)
            if i >= 3:
                times[dense].append(ms)
    return statistics.median(times[False]), statistics.median(times[True])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--fp32", action="store_true")
    args = parser.parse_args()
    dtype = torch.float32 if args.fp32 else torch.bfloat16
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {dtype}, channels_last")
    print(f"{'norm output':22s} {'strided ms':>10s} {'dense ms':>9s} {'ratio':>6s}")
    torch.manual_seed(0)
    for c, side in SHAPES:
        shape = (args.batch, c, side, side)
        a, b = strided_vs_dense_ms(shape, dtype, args.repeats)
        print(f"{str(shape):22s} {a:10.2f} {b:9.2f} {a / b:5.1f}x")


if __name__ == "__main__":
    sys.exit(main())
