"""Inference throughput of a generator: images/s at batch 1 and 16, eager fp32 (the
reference) vs ganzoo's fp32 (the small convolutions as matrix multiplies on the CPU,
``ganzoo.nn.matmul_conv``, as ``ganzoo.load`` / ``translate`` / ``eval`` run) and ganzoo's fast
path, ``ganzoo.load(precision="bf16")`` (the same with bf16 autocast over weights stored in
bf16, channels_last).

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
from ganzoo.nn.inference_weights import weights_in
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
    fast = fast_bf16(device)
    switched = copy.deepcopy(net)
    if device.type == "cpu":
        small_convolutions_as_matmuls(switched)
    # name: (network, bf16 autocast, channels_last); "ganzoo fp32" is what ganzoo.load,
    # translate and eval run by default, "ganzoo fast" what ganzoo.load(precision="bf16") runs:
    # bf16 autocast over bf16-stored weights, channels_last
    configs = {
        "reference": (net, False, False),
        "ganzoo fp32": (switched, False, False),
        "ganzoo fast": (copy.deepcopy(switched), fast, True),
    }
    if fast:  # as ganzoo.load(precision="bf16"): the weights cast once, not at every call
        weights_in(configs["ganzoo fast"][0], torch.bfloat16)
    print(f"{'batch':>5s} " + " ".join(f"{name + ' img/s':>17s}" for name in configs) + "  ratios")
    for n in (int(b) for b in args.batch_sizes.split(",")):
        x = torch.rand(n, recipe.data.in_channels, h, w, device=device) * 2 - 1
        times: dict[str, list[float]] = {name: [] for name in configs}
        for _ in range(args.repeats):  # interleaved: one timed forward of each per round
            for name, (network, bf16, nhwc) in configs.items():
                times[name] += time_config(network, x, bf16=bf16, channels_last=nhwc, repeats=1)
        rates = {name: n / statistics.median(t) for name, t in times.items()}
        ratios = " ".join(f"{rates[k] / rates['reference']:5.2f}x" for k in list(configs)[1:])
        print(f"{n:5d} " + " ".join(f"{r:17.2f}" for r in rates.values()) + f"  {ratios}")


if __name__ == "__main__":
    sys.exit(main())
