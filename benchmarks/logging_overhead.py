"""What the loggers cost: whole training runs of a recipe with no logger (the JSONL log alone)
against the same runs with each logger, interleaved in one process so that every
configuration sees the same machine state.

    python benchmarks/logging_overhead.py recipes/quickstart.yaml --steps 200 --repeats 3 \
        --loggers tensorboard

Every run trains ``--steps`` steps from scratch in a fresh run directory with the recipe's
cadence (``--log-every``, ``--sample-every``), so the time includes what a logger does at
start (opening its writer or run), at each log and sample step, and at the end. W&B runs
offline (``WANDB_MODE=offline``) and MLflow into a local SQLite store (``ganzoo[mlflow]``), so
nothing here measures a network. A logger dropped during a run (not installed, its store
refused) ends the benchmark with its one-line reason instead of a number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from ganzoo.recipe import load_recipe
from ganzoo.training.logs import LoggerWarning
from ganzoo.training.trainer import train

SETTINGS = {
    "tensorboard": "tensorboard",
    "wandb": "{name: wandb, mode: offline}",
    "mlflow": "{name: mlflow, tracking_uri: 'sqlite:///TMP/mlflow.db'}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=50)
    parser.add_argument("--loggers", default="tensorboard", help="comma-separated")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ganzoo-logging-"))
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    names = [n.strip() for n in args.loggers.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        sys.exit(f"unknown logger(s) {unknown}; choose from {sorted(SETTINGS)}")
    base = [
        *args.overrides,
        f"train.max_steps={args.steps}",
        f"train.log_every={args.log_every}",
        f"train.sample_every={args.sample_every}",
        f"train.checkpoint_every={args.steps}",
    ]
    configs = {"none": "[]", **{n: "[" + SETTINGS[n].replace("TMP", str(tmp)) + "]" for n in names}}
    recipes = {
        name: load_recipe(args.recipe, [*base, f"train.loggers={value}"])
        for name, value in configs.items()
    }
    first = recipes["none"]
    print(
        f"recipe {first.name}: {first.data.image_size[0]}x{first.data.image_size[1]}, batch "
        f"{first.data.batch_size}, {args.steps} steps per run, log every {args.log_every}, "
        f"samples every {args.sample_every}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    walls: dict[str, list[float]] = {name: [] for name in recipes}
    for i in range(args.repeats):
        for name, recipe in recipes.items():  # interleaved: none, tb, ..., none, tb, ...
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", LoggerWarning)
                train(recipe, run_dir=tmp / f"{name}-{i}", progress=False)
            walls[name].append(time.perf_counter() - t0)
            dropped = [str(w.message) for w in caught if issubclass(w.category, LoggerWarning)]
            if dropped:  # its time would be that of no logger: refuse to report it
                sys.exit(f"{name}: {dropped[0]}; no overhead is reported for a dropped logger")
    print(f"\n{'loggers':12s} {'median s/run':>13s} {'ms/step':>9s} {'vs none':>9s}")
    none = statistics.median(walls["none"])
    for name, ws in walls.items():
        med = statistics.median(ws)
        print(
            f"{name:12s} {med:13.2f} {1000 * med / args.steps:9.1f} "
            f"{100 * (med - none) / none:+8.1f}%"
        )


if __name__ == "__main__":
    sys.exit(main())
