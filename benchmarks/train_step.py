"""Time full training iterations of a recipe: the reference configuration vs ganzoo's
defaults, interleaved in one run so that both see the same machine state.

    python benchmarks/train_step.py recipes/pix2pix_unet256.yaml --steps 30 --warmup 5 \
        --set data.root=../shared/datasets/facades

``reference`` is what the original pix2pix implementation does: fp32, contiguous (NCHW)
tensors, PyTorch's default Adam (the per-parameter for-loop on CPU), eager. ``ganzoo`` is the
trainer with the recipe's own settings (defaults: bf16 autocast where fast, channels_last,
fused Adam). Each timed iteration includes fetching its batch from the data loader.

``--baseline OVERRIDE`` (repeatable) replaces the reference configuration by the recipe with
those overrides, to compare two ganzoo settings side by side, e.g. the precisions:

    python benchmarks/train_step.py recipes/pix2pix_unet256.yaml --steps 30 \
        --set data.root=../shared/datasets/facades --set train.precision=bf16-master \
        --baseline train.precision=bf16

``--copying-adam`` builds the baseline as ganzoo did before issue 25 (fused Adam stepping the
channels_last weights themselves, which copies them to contiguous memory and back):

    python benchmarks/train_step.py recipes/pix2pix_unet256.yaml --steps 30 \
        --set data.root=../shared/datasets/facades --baseline train.precision=auto --copying-adam

``--plain-norms`` builds the baseline without the hooks that keep norm layers in step with
channels_last (``ganzoo.nn.norm_layouts``: batch norm handed a dense gradient, instance norm's
output in its input's layout; ganzoo before them):

    python benchmarks/train_step.py recipes/pix2pix_unet256.yaml --steps 20 \
        --set data.root=../shared/datasets/facades --baseline train.precision=auto \
        --plain-norms

The order alternates every round (A, B, then B, A); besides wall time it reports the process
CPU time per step, which a busy shared machine inflates less (run it with OMP_NUM_THREADS=1
there: waiting threads spin).
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

import ganzoo.training.state as state_module
from ganzoo.data import build_dataset, epoch_batches
from ganzoo.recipe import load_recipe
from ganzoo.training.batches import loader_workers
from ganzoo.training.trainer import Trainer

REFERENCE = [
    "train.precision=fp32",
    "train.channels_last=false",
    "train.compile=false",
    "optim.fused=false",
]


class _StepTheWeights:
    """In place of :class:`ganzoo.training.dense_views.DenseViews`: no views."""

    def __init__(self, params):
        self.params = params

    def parameters(self):
        return self.params

    def attach(self, optimizer) -> None:
        pass


def _optimizer(opt: torch.optim.Optimizer) -> str:
    if type(opt).__name__ != "Adam":
        return type(opt).__name__  # MasterAdam: the bf16-master update in one pass
    return "fused Adam" if opt.defaults.get("fused") else "Adam"


def plain_norms() -> contextlib.AbstractContextManager:
    """Trainers built inside leave their norm layers unhooked."""
    return mock.patch.object(state_module, "channels_last_norms", lambda net: 0)


def copying_adam() -> contextlib.AbstractContextManager:
    """Trainers built inside step their weights themselves (the fused kernel copies)."""
    return mock.patch.object(state_module, "DenseViews", _StepTheWeights)


def batches_forever(trainer: Trainer):
    """The trainer's own data path: epoch after epoch of its loader."""
    epoch = 0
    while True:
        yield from trainer.train_batches.epoch(epoch, 0)
        epoch += 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_images_per_second(recipe, device: torch.device, seconds: float = 5.0) -> float:
    ds = build_dataset(recipe.data, recipe.data.train_split, train=True, seed=recipe.seed)
    n, t0, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        for batch in epoch_batches(
            ds,
            batch_size=recipe.data.batch_size,
            shuffle=True,
            seed=recipe.seed,
            epoch=epoch,
            num_workers=loader_workers(recipe.data.num_workers, device, recipe.data.cache),
        ):
            n += batch["A"].shape[0]
            if time.perf_counter() - t0 >= seconds:
                break
        epoch += 1
    return n / (time.perf_counter() - t0)


def flops_per_iteration(trainer: Trainer, batch) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step(batch)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=20, help="timed iterations per config")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", choices=["reference", "ganzoo"], default=None)
    parser.add_argument(
        "--copying-adam",
        action="store_true",
        help="the baseline's fused Adam steps channels_last weights directly, copying them to "
        "contiguous memory and back (ganzoo before issue 25)",
    )
    parser.add_argument(
        "--plain-norms",
        action="store_true",
        help="the baseline's norm layers unhooked: batch norm gets the skip concatenations' "
        "strided gradients, instance norm returns NCHW (ganzoo before ganzoo.nn.norm_layouts)",
    )
    parser.add_argument(
        "--baseline",
        action="append",
        default=None,
        help="compare against the recipe with these overrides instead of the reference",
    )
    args = parser.parse_args()

    recipe = load_recipe(args.recipe, args.overrides)
    configs = {
        "reference": load_recipe(args.recipe, [*args.overrides, *(args.baseline or REFERENCE)]),
        "ganzoo": recipe,
    }
    if args.only:
        configs = {args.only: configs[args.only]}
    tmp = Path(tempfile.mkdtemp(prefix="ganzoo-bench-"))
    trainers = {}
    for name, r in configs.items():
        baseline = name == "reference"
        with contextlib.ExitStack() as stack:
            if args.copying_adam and baseline:
                stack.enter_context(copying_adam())
            if args.plain_norms and baseline:
                stack.enter_context(plain_norms())
            trainers[name] = Trainer(r, tmp / name, progress=False)
    device = next(iter(trainers.values())).device
    streams = {name: batches_forever(t) for name, t in trainers.items()}

    print(
        f"recipe {recipe.name}: G {recipe.generator.name}, D {recipe.discriminator.name}, "
        f"{recipe.data.image_size[0]}x{recipe.data.image_size[1]}, batch "
        f"{recipe.data.batch_size}, device {device}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    for name, t in trainers.items():
        print(
            f"  {name:9s}: precision {t.precision}, channels_last "
            f"{t.recipe.train.channels_last}, compile {t.recipe.train.compile}, "
            f"optimizer {_optimizer(t.state.opt_g)}"
        )

    for _ in range(args.warmup):
        for name, t in trainers.items():
            t.train_step(next(streams[name]))
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in trainers}
    cpu: dict[str, list[float]] = {name: [] for name in trainers}
    peak: dict[str, int] = {name: 0 for name in trainers}
    for i in range(args.steps):
        order = list(trainers) if i % 2 == 0 else list(reversed(trainers))
        for name in order:  # interleaved: ref, ganzoo, ganzoo, ref, ref, ...
            t = trainers[name]
            batch = next(streams[name])
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            t0, c0 = time.perf_counter(), time.process_time()
            t.train_step(batch)
            sync(device)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if device.type == "cuda":
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated(device))

    flops = {name: flops_per_iteration(t, next(streams[name])) for name, t in trainers.items()}
    imgs = loader_images_per_second(recipe, device)
    print(
        f"\n{'config':10s} {'median ms':>10s} {'p10-p90 ms':>15s} {'CPU ms':>8s} "
        f"{'GFLOP/iter':>11s} {'GFLOP/s':>8s} {'peak mem':>10s}"
    )
    cpu_medians = {name: 1000 * statistics.median(ts) for name, ts in cpu.items()}
    medians = {}
    for name, ts in times.items():
        ms = sorted(1000 * x for x in ts)
        med = statistics.median(ms)
        medians[name] = med
        p10, p90 = ms[len(ms) // 10], ms[(9 * len(ms)) // 10 - (1 if len(ms) >= 10 else 0)]
        mem = f"{peak[name] / 2**20:.0f} MiB" if device.type == "cuda" else "-"
        print(
            f"{name:10s} {med:10.1f} {p10:7.1f}-{p90:<7.1f} {cpu_medians[name]:8.1f} "
            f"{flops[name] / 1e9:11.1f} "
            f"{flops[name] / 1e9 / (med / 1000):8.1f} {mem:>10s}"
        )
    if len(medians) == 2:
        base = "baseline" if args.baseline else "reference"
        paired = statistics.median(r / g for r, g in zip(times["reference"], times["ganzoo"]))
        print(
            f"\nratio {base} / ganzoo: {medians['reference'] / medians['ganzoo']:.3f}x wall "
            f"(median of per-round ratios {paired:.3f}x), "
            f"{cpu_medians['reference'] / cpu_medians['ganzoo']:.3f}x CPU time"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"data loader alone: {imgs:.1f} images/s "
        f"({imgs / recipe.data.batch_size:.1f} batches/s); "
        f"process peak RSS {rss:.0f} MiB (both configs)"
    )


if __name__ == "__main__":
    sys.exit(main())
