"""Where a training step's time goes: torch.profiler over a few steps of the reference
configuration and of ganzoo's defaults, grouped into convolutions, optimizer, copies, norms.

    python benchmarks/profile_step.py recipes/pix2pix_unet256.yaml --steps 3

``--baseline OVERRIDE`` (repeatable) profiles the recipe with those overrides in the first
column instead of the reference configuration (e.g. ``--baseline train.precision=bf16
--set train.precision=bf16-master``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from torch.profiler import ProfilerActivity, profile
from train_step import REFERENCE, batches_forever

from ganzoo.recipe import load_recipe
from ganzoo.training.trainer import Trainer

GROUPS = {
    "convolution backward": ("aten::convolution_backward",),
    "convolution forward": (
        "aten::mkldnn_convolution",
        "aten::_convolution",
        "aten::cudnn_convolution",
        "aten::convolution",
    ),
    "Adam": (
        "aten::_fused_adam_",
        "aten::div",
        "aten::sqrt",
        "aten::addcdiv_",
        "aten::lerp_",
        "aten::mul_",
        "aten::addcmul_",
        "aten::_foreach",
        "## Call CompiledFxGraph",  # bf16-master's compiled update (training/master_adam.py)
        "Torch-Compiled Region",
        "Optimizer.step#",
    ),
    "dtype / layout copies": (
        "aten::copy_",
        "aten::_to_copy",
        "aten::contiguous",
        "aten::_foreach_copy_",
    ),
    "matrix multiplies (small convolutions)": (
        "aten::mm",
        "aten::addmm",
        "aten::im2col",
        "aten::col2im",
    ),
    "batch norm": (
        "aten::native_batch_norm",
        "aten::native_batch_norm_backward",
        "aten::cudnn_batch_norm",
    ),
}


def breakdown(trainer: Trainer, steps: int) -> dict[str, float]:
    stream = batches_forever(trainer)
    for _ in range(3):
        trainer.train_step(next(stream))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step(next(stream))
    totals = {group: 0.0 for group in GROUPS}
    everything = 0.0
    for event in prof.key_averages():
        everything += event.self_cpu_time_total
        for group, prefixes in GROUPS.items():
            if event.key.startswith(prefixes):
                totals[group] += event.self_cpu_time_total
                break
    totals["everything else"] = everything - sum(totals.values())
    return {k: v / 1000 / steps for k, v in totals.items()}  # ms per step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--baseline",
        action="append",
        default=None,
        help="profile the recipe with these overrides instead of the reference",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganzoo-profile-"))
    results = {}
    for name, extra in (("reference", args.baseline or REFERENCE), ("ganzoo", [])):
        recipe = load_recipe(args.recipe, [*args.overrides, *extra])
        results[name] = breakdown(Trainer(recipe, tmp / name, progress=False), args.steps)
    print(f"{'ms per step (share)':24s} {'reference':>18s} {'ganzoo':>18s}")
    totals = {name: sum(r.values()) for name, r in results.items()}
    for group in results["reference"]:
        cells = [
            f"{results[n][group]:8.1f} ({100 * results[n][group] / totals[n]:4.1f} %)"
            for n in results
        ]
        print(f"{group:24s} {cells[0]:>18s} {cells[1]:>18s}")
    print(f"{'total (profiled)':24s} {totals['reference']:18.1f} {totals['ganzoo']:18.1f}")


if __name__ == "__main__":
    sys.exit(main())
