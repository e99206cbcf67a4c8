"""The U-Net's convolutions one by one: oneDNN (``nn.Conv2d`` / ``nn.ConvTranspose2d``) vs the
same layer as one matrix multiply (``ganzoo.nn.matmul_conv``), forward + backward under bf16
autocast with channels_last tensors (ganzoo's CPU defaults), interleaved layer by layer.

    python benchmarks/small_convs.py            # unet_256 at 256x256, batch 1
    python benchmarks/small_convs.py --batch 4 --fp32

Rows = batch x output positions (a convolution) or x input positions (a transposed one); the
trainer takes the matrix multiply up to ``MAX_ROWS`` of them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time

import torch
from torch import nn

import ganzoo.nn.matmul_conv as matmul_conv
from ganzoo.nn.matmul_conv import small_convolutions_as_matmuls

#: The trainer's limit; this benchmark times the matrix multiply beyond it too.
MAX_ROWS = matmul_conv.MAX_ROWS
matmul_conv.MAX_ROWS = 1 << 30

# (kind, in channels, out channels, input side) of unet_256's down and up convolutions (4x4,
# stride 2, padding 1) at 256x256, ngf 64, innermost first
LAYERS = [
    ("down", 512, 512, 2),
    ("down", 512, 512, 4),
    ("down", 512, 512, 8),
    ("down", 512, 512, 16),
    ("down", 256, 512, 32),
    ("down", 128, 256, 64),
    ("up", 512, 512, 1),
    ("up", 1024, 512, 2),
    ("up", 1024, 512, 4),
    ("up", 1024, 512, 8),
    ("up", 1024, 256, 16),
    ("up", 512, 128, 32),
]


def layer(kind: str, c_in: int, c_out: int) -> nn.Module:
    if kind == "down":
        return nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False)
    return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)


def fwd_bwd_ms(net: nn.Module, x: torch.Tensor, bf16: bool) -> float:
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    t0 = time.perf_counter()
    with cast:
        y = net(x)
    y.float().sum().backward()
    net.zero_grad(set_to_none=True)
    return 1000 * (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--fp32", action="store_true", help="no autocast")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch}, "
        f"{'fp32' if args.fp32 else 'bf16 autocast'}, channels_last; MAX_ROWS {MAX_ROWS}"
    )
    print(f"{'layer':28s} {'rows':>5s} {'oneDNN ms':>10s} {'matmul ms':>10s} {'ratio':>6s}")
    torch.manual_seed(0)
    for kind, c_in, c_out, side in LAYERS:
        onednn = layer(kind, c_in, c_out).to(memory_format=torch.channels_last)
        matmul = copy.deepcopy(onednn)
        small_convolutions_as_matmuls(matmul)
        x = torch.randn(args.batch, c_in, side, side).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        times: dict[str, list[float]] = {"onednn": [], "matmul": []}
        nets = {"onednn": onednn, "matmul": matmul}
        for i in range(args.repeats + 3):
            for name in nets if i % 2 == 0 else reversed(nets):
                ms = fwd_bwd_ms(nets[name], x, not args.fp32)
                if i >= 3:
                    times[name].append(ms)
        rows = args.batch * (side // 2 if kind == "down" else side) ** 2
        a, b = statistics.median(times["onednn"]), statistics.median(times["matmul"])
        name = f"{kind} {c_in}->{c_out} {side}x{side}"
        mark = "" if rows <= MAX_ROWS else "  (trainer: oneDNN)"
        print(f"{name:28s} {rows:5d} {a:10.2f} {b:10.2f} {a / b:5.2f}x{mark}")


if __name__ == "__main__":
    sys.exit(main())
