"""``ganzoo calibrate``: precise-BN statistics written back into a run's checkpoint.

G's BatchNorm running statistics (and those of its EMA copy, when the run kept one) are
recomputed over training images (:mod:`ganzoo.training.calibration`) and the checkpoint is
rewritten atomically in place (:func:`ganzoo.safe_io.write_bytes_atomic`), under the run
directory's lock so that a training in progress is never overwritten. Only the BatchNorm
buffers change; the checkpoint records ``bn_calibration`` (images, split). Eval mode and
exports use the new statistics; the ``auto`` and ``train`` modes do not read them.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import torch

from ganzoo.artifacts.checkpoint import load_checkpoint
from ganzoo.artifacts.loading import load_weights_into, stored_recipe
from ganzoo.artifacts.schema import ema_weights
from ganzoo.artifacts.sources import find_checkpoint, is_hub_source
from ganzoo.build import build_generator
from ganzoo.device import resolve_device
from ganzoo.errors import GanzooError
from ganzoo.evaluation.evaluate import with_data_root
from ganzoo.nn.precise_bn import batchnorm_layers
from ganzoo.run_dir import CHECKPOINTS, RunDir
from ganzoo.safe_io import write_bytes_atomic
from ganzoo.training.calibration import DEFAULT_IMAGES, calibrate_generator


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_run` did."""

    checkpoint: Path
    images: int  # images the statistics were averaged over
    layers: int  # BatchNorm layers recomputed in G
    ema: bool  # the EMA copy was recomputed too
    split: str

    def describe(self) -> str:
        ema = " and its EMA copy" if self.ema else ""
        return (
            f"recomputed {self.layers} BatchNorm layers of G{ema} over {self.images} "
            f"{self.split} images; wrote {self.checkpoint}"
        )


def _run_lock(checkpoint: Path) -> contextlib.AbstractContextManager:
    """The run directory's training lock when ``checkpoint`` sits in one's checkpoints/."""
    if checkpoint.parent.name == CHECKPOINTS and RunDir(checkpoint.parent.parent).is_run():
        return RunDir(checkpoint.parent.parent).lock()
    return contextlib.nullcontext()


def calibrate_run(
    source: str | Path,
    *,
    images: int = DEFAULT_IMAGES,
    split: str | None = None,
    data_root: str | Path | None = None,
    device: str = "cpu",
) -> Calibration:
    """Recompute the BatchNorm statistics of the newest checkpoint of run directory ``source``
    (or of checkpoint file ``source``) over ``images`` images of ``split`` (default the
    training split) and write them back; one-line errors for every other source."""
    if images < 1:
        raise GanzooError(f"--images {images}: must be at least 1")
    if is_hub_source(str(source)):
        raise GanzooError(f"{source}: calibrate writes into a local run or checkpoint (.pt)")
    path = find_checkpoint(source)
    if path.suffix != ".pt":
        raise GanzooError(
            f"{path}: calibrate writes into a training checkpoint (.pt); calibrate the run, "
            "then export it again"
        )
    with _run_lock(path):
        state = load_checkpoint(path)
        recipe = with_data_root(stored_recipe(state.get("recipe"), path), data_root, source)
        split = split or recipe.data.train_split
        net = build_generator(recipe)
        if not batchnorm_layers(net):
            raise GanzooError(f"{path}: G has no BatchNorm layers; there is nothing to calibrate")
        net.to(resolve_device(device))
        parts = [("generator", "", state["generator"])]
        ema_state = state.get("ema")
        if isinstance(ema_state, dict) and int(ema_state.get("n_averaged", 0)) > 0:
            parts.append(("ema", "module.", ema_weights(ema_state)))
        used = 0
        for key, prefix, weights in parts:
            load_weights_into(net, weights, path)
            used = calibrate_generator(net, recipe, images, split)
            for name, tensor in net.state_dict().items():
                if name.endswith(("running_mean", "running_var")):
                    state[key][prefix + name] = tensor.detach().to("cpu", copy=True)
        state["bn_calibration"] = {"images": used, "split": split}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(path, buffer.getvalue())  # an OSError leaves the file as it was
    return Calibration(path, used, len(batchnorm_layers(net)), len(parts) > 1, split)
