"""Time the real upstream pix2pix ``train.py`` beside ``ganzoo train``, in interleaved rounds.

    python benchmarks/upstream_train.py --upstream /tmp/upstream \
        --data ../shared/datasets/facades --rounds 2 --iters 200 \
        --upstream-pythonpath /tmp/upstream_deps

``--upstream`` is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (kept outside this
project; its ``train.py`` imports ``dominate`` and ``wandb`` unguarded, so they must be
importable by ``--upstream-python``, e.g. through ``--upstream-pythonpath``). Each round runs,
one after the other on the same machine state:

* upstream: ``train.py --model pix2pix --direction BtoA`` with its own defaults (unet_256,
  70x70 PatchGAN, batch norm, batch 1, 4 loader workers), one epoch of ``--iters`` images,
  on the CPU (``CUDA_VISIBLE_DEVICES=""``, ``WANDB_MODE=disabled``, ``--no_html``) and
  ``--print_freq 1`` so that every iteration prints its ``time:`` (compute) and ``data:``
  (waiting for the loader) seconds;
* ganzoo: ``ganzoo train recipes/pix2pix_unet256.yaml`` with its defaults for ``--iters``
  steps, ``train.log_every`` = 10, whose ``metrics.jsonl`` records ``ms_per_step`` (wall
  time per step, data included) over each window of 10 steps.

``--config quickstart`` runs both at ``recipes/quickstart.yaml``'s configuration instead
(unet_128 with ngf 32, 70x70 PatchGAN with ndf 32, instance norm, 143 -> 128 crops, batch 4;
upstream: ``--netG unet_128 --ngf 32 --ndf 32 --norm instance --load_size 143 --crop_size 128
--batch_size 4``), both on ``--data``. Upstream prints its compute time per image; it is
multiplied by the batch size.

Both figures are wall time per iteration, data included; the first ``--warmup`` iterations
are left out of both. The table gives the median ms/iter per round and the ratio
upstream/ganzoo. Logs and run directories stay in a temporary folder named at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Config(NamedTuple):
    """What ``--config`` trains on both sides."""

    recipe: Path  #: ganzoo's recipe
    upstream_options: list[str]  #: train.py options beyond --model pix2pix --direction BtoA
    batch: int


CONFIGS = {
    "pix2pix": Config(ROOT / "recipes" / "pix2pix_unet256.yaml", [], 1),
    "quickstart": Config(
        ROOT / "recipes" / "quickstart.yaml",
        ["--netG", "unet_128", "--ngf", "32", "--ndf", "32", "--norm", "instance",
         "--load_size", "143", "--crop_size", "128"],
        4,
    ),
}  # fmt: skip
LOG_EVERY = 10
# "(epoch: 1, iters: 7, time: 0.812, data: 0.003)" in upstream's loss lines
LOSS_LINE = re.compile(r"iters: (\d+), time: ([0-9.]+), data: ([0-9.]+)\)")


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def run(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> str:
    """Run ``cmd``; its stdout+stderr go to ``log`` and are returned. Fails on a non-zero exit."""
    with log.open("w") as f:
        proc = subprocess.run(cmd, env=env, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
    text = log.read_text()
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        fail(f"{cmd[1]} exited with {proc.returncode}; its log {log} ends:\n{tail}")
    return text


def upstream_ms(args: argparse.Namespace, work: Path, round_: int) -> tuple[float, float]:
    """(median wall ms/iter, median compute ms/iter) of one upstream run after the warm-up."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", WANDB_MODE="disabled")
    if args.upstream_pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (args.upstream_pythonpath, env.get("PYTHONPATH", "")) if p
        )
    config = CONFIGS[args.config]
    batch = config.batch
    cmd = [
        args.upstream_python,
        str(args.upstream / "train.py"),
        "--dataroot", str(args.data),
        "--name", "bench",
        "--checkpoints_dir", str(work / f"upstream{round_}"),
        "--model", "pix2pix",
        "--direction", "BtoA",
        "--n_epochs", "1",
        "--n_epochs_decay", "0",
        "--batch_size", str(batch),
        "--max_dataset_size", str(args.iters * batch),
        "--print_freq", "1",
        "--display_freq", str(10 * args.iters),
        "--save_latest_freq", str(10 * args.iters),
        "--no_html",
        *config.upstream_options,
    ]  # fmt: skip
    text = run(cmd, env, args.upstream, work / f"upstream{round_}.log")
    # "iters" counts images; "time" is compute per image
    rows = [(int(i) // batch, batch * float(c), float(d)) for i, c, d in LOSS_LINE.findall(text)]
    kept = [(c, d) for i, c, d in rows if i > args.warmup]
    if not kept:
        fail(f"no upstream loss lines after iteration {args.warmup} in {work}/upstream{round_}.log")
    return (
        1000 * statistics.median(c + d for c, d in kept),
        1000 * statistics.median(c for c, _ in kept),
    )


def ganzoo_ms(args: argparse.Namespace, work: Path, round_: int) -> float:
    """Median ``ms_per_step`` of the windows of one ganzoo run that start after the warm-up."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", WANDB_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    out = work / f"ganzoo{round_}"
    cmd = [
        sys.executable, "-m", "ganzoo", "train", str(CONFIGS[args.config].recipe),
        "--out", str(out),
        "--set", f"data.root={args.data}",
        "--set", f"train.max_steps={args.iters}",
        "--set", f"train.log_every={LOG_EVERY}",
        "--set", "train.device=cpu",
    ]  # fmt: skip
    run(cmd, env, ROOT, work / f"ganzoo{round_}.log")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    ms = [
        r["ms_per_step"]
        for r in records
        if "ms_per_step" in r and r.get("step", 0) - LOG_EVERY >= args.warmup
    ]
    if not ms:
        fail(f"no ms_per_step records after step {args.warmup} in {out}/metrics.jsonl")
    return statistics.median(ms)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", type=Path, required=True, help="upstream pix2pix checkout")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/facades")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--iters", type=int, default=200, help="iterations of each run")
    p.add_argument("--warmup", type=int, default=20, help="first iterations left out")
    p.add_argument("--upstream-python", default=sys.executable)
    p.add_argument("--upstream-pythonpath", default="", help="prepended to PYTHONPATH")
    p.add_argument(
        "--config", choices=sorted(CONFIGS), default="pix2pix", help="what both train (doc above)"
    )
    args = p.parse_args()
    args.upstream, args.data = args.upstream.resolve(), args.data.resolve()
    if not (args.upstream / "train.py").is_file():
        fail(f"{args.upstream}/train.py not found: pass --upstream an upstream pix2pix checkout")
    if not (args.data / "train").is_dir():
        fail(f"{args.data}/train not found: pass --data a facades folder (`ganzoo data fetch`)")
    if args.iters <= args.warmup + LOG_EVERY:
        fail(f"--iters {args.iters} must exceed --warmup + {LOG_EVERY}")
    batch = CONFIGS[args.config].batch
    images = sum(1 for p in (args.data / "train").iterdir() if p.is_file())
    if args.iters * batch > images:  # upstream's --max_dataset_size caps its one epoch there
        fail(
            f"--iters {args.iters} x batch {batch} exceeds the {images} training images of "
            f"{args.data}: the upstream's one epoch would stop early; pass --iters "
            f"{images // batch} or fewer"
        )

    rows = []
    work = Path(tempfile.mkdtemp(prefix="upstream_train_"))
    print(f"logs and runs in {work}", flush=True)
    for r in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        up_wall, up_comp = upstream_ms(args, work, r)
        gz = ganzoo_ms(args, work, r)
        rows.append((r, up_wall, up_comp, gz))
        print(f"round {r}: upstream {up_wall:.1f} ms/iter, ganzoo {gz:.1f} ms/step "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip

    print(f"\n{args.iters} iterations per run, first {args.warmup} left out; medians")
    print("| round | upstream train.py ms/iter (compute only) | ganzoo train ms/step | ratio |")
    print("|---:|---:|---:|---:|")
    for r, up_wall, up_comp, gz in rows:
        print(f"| {r} | {up_wall:.1f} ({up_comp:.1f}) | {gz:.1f} | {up_wall / gz:.2f}× |")


if __name__ == "__main__":
    main()
