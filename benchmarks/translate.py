"""Inference throughput of a generator: images/s at batch 1 and 16, eager fp32 (the
reference) vs bf16 autocast + channels_last, with the small convolutions as matrix multiplies
on the CPU (``ganzoo.nn.matmul_conv``, as ``ganzoo.load`` / ``translate`` / ``eval`` set them).

    python benchmarks/translate.py runs/pix2pix_unet256          # a run dir or checkpoint
    python benchmarks/translate.py recipes/pix2pix_unet256.yaml  # a recipe: untrained weights
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

from ganzoo.build import build_generator
from ganzoo.device import resolve_device
from ganzoo.nn.matmul_conv import small_convolutions_as_matmuls
from ganzoo.recipe import load_recipe
from ganzoo.training.precision import fast_bf16


def load(path: str, overrides: list[str]):
    if path.endswith((".yaml", ".yml")):
        recipe = load_recipe(path, overrides)
        return build_generator(recipe), recipe
    from ganzoo.artifacts.loading import load_generator

    net, recipe, _ = load_generator(Path(path))
    return net, recipe


def time_config(net, x, *, bf16: bool, channels_last: bool, repeats: int) -> list[float]:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)
    cast = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    with torch.inference_mode(), cast:
        net(x)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            if x.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="run dir, checkpoint, safetensors file or recipe YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,16")
    args = parser.parse_args()
    device = resolve_device()
    net, recipe = load(args.source, args.overrides)
    net = net.to(device).eval()
    h, w = recipe.data.image_size
    print(f"{recipe.generator.name} at {h}x{w} on {device}, torch {torch.__version__}")
    print(f"{'batch':>5s} {'reference img/s':>16s} {'ganzoo img/s':>13s} {'ratio':>6s}")
    fast = fast_bf16(device)
    fast_net = copy.deepcopy(net)
    if device.type == "cpu":
        small_convolutions_as_matmuls(fast_net)
    for n in (int(b) for b in args.batch_sizes.split(",")):
        x = torch.rand(n, recipe.data.in_channels, h, w, device=device) * 2 - 1
        rates = {}
        # interleave the two configurations, one timed forward each, repeats times
        ref_t, fast_t = [], []
        for _ in range(args.repeats):
            ref_t += time_config(net, x, bf16=False, channels_last=False, repeats=1)
            fast_t += time_config(fast_net, x, bf16=fast, channels_last=True, repeats=1)
        rates["ref"] = n / statistics.median(ref_t)
        rates["fast"] = n / statistics.median(fast_t)
        print(
            f"{n:5d} {rates['ref']:16.2f} {rates['fast']:13.2f} "
            f"{rates['fast'] / rates['ref']:5.2f}x"
        )


if __name__ == "__main__":
    sys.exit(main())
