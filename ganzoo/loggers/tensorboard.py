"""TensorBoard event files (``torch.utils.tensorboard``; ``pip install 'ganzoo[tensorboard]'``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ganzoo.loggers.base import Logger, RunInfo, flatten
from ganzoo.registry import register


@register("logger", "tensorboard", paper="TensorBoard (https://www.tensorflow.org/tensorboard)")
class TensorBoardLogger(Logger):
    """TensorBoard event files in ``RUN_DIR/tensorboard`` (or ``log_dir``).

    Scalars, sample sheets, the recipe and environment as text, and the final metrics as
    hyperparameters (the HPARAMS tab). A resume purges events past the checkpoint's step, so
    no step appears twice.
    """

    def __init__(self, run_dir: Path, log_dir: str | None = None) -> None:
        self.log_dir = Path(log_dir) if log_dir else Path(run_dir) / "tensorboard"
        self.writer: Any = None
        self.recipe: dict[str, Any] = {}
        self.step = 0

    def start(self, info: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        _quiet_writer_threads()
        self.writer = SummaryWriter(
            str(self.log_dir), purge_step=info.step + 1 if info.resumed else None
        )
        self.recipe = info.recipe
        self.step = info.step
        if not info.resumed:
            self.writer.add_text("recipe", "```\n" + info.recipe_yaml + "\n```", 0)
            lines = "\n".join(f"- {k}: {v}" for k, v in info.environment.items())
            self.writer.add_text("environment", lines, 0)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.writer.add_scalar(_tag(key), value, step)
        self.step = step

    def log_image(self, step: int, name: str, path: Path) -> None:
        from PIL import Image

        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
        self.writer.add_image(name, array, step, dataformats="HWC")

    def finish(self, final: dict[str, float]) -> None:
        params = {
            k: v for k, v in flatten(self.recipe).items() if isinstance(v, (int, float, str, bool))
        }
        metrics = {f"hparam/{k}": v for k, v in final.items()}
        if metrics:
            self.writer.add_hparams(params, metrics, run_name=".", global_step=self.step)
        self.writer.close()


def _quiet_writer_threads() -> None:
    """Keep TensorBoard's event-writer threads from printing a traceback. A failed write (a
    full disk) is stored by the thread and raised again by the writer's next call, so the
    logger is dropped with its one-line warning; the thread re-raising it as well only adds a
    traceback. Other threads' uncaught errors print as before."""
    previous = threading.excepthook
    if getattr(previous, "ganzoo_tensorboard", False):
        return

    def hook(args: Any) -> None:
        if not type(args.thread).__module__.startswith("tensorboard."):
            previous(args)

    hook.ganzoo_tensorboard = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def _tag(key: str) -> str:
    """``loss_g_l1`` -> ``loss/g_l1``, ``val_l1`` -> ``val/l1``: grouped in TensorBoard."""
    for prefix in ("loss", "val", "lr", "grad_norm", "d_out", "d"):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1 :]}"
    return f"speed/{key}" if key in ("ms_per_step", "images_per_s") else key
