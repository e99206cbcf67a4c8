"""What a saved model holds: the checkpoint dict, the safetensors metadata, the Hub folder.

A **checkpoint** (``RUN/checkpoints/step_*.pt``, read with ``weights_only=True``) is a dict:

* ``format`` (:data:`FORMAT`), ``recipe`` (the resolved recipe as a dict), ``step``, ``epoch``,
  ``samples_in_epoch`` (the position in the data): :func:`checkpoint_header`;
* ``generator`` (G's state dict; the only part every checkpoint has) and ``discriminator``;
* training: ``opt_g``/``opt_d``, ``sched_g``/``sched_d``, ``scaler_g``/``scaler_d``, ``pool``,
  ``rng`` and ``ema`` (a ``torch.optim.swa_utils.AveragedModel`` state dict of G);
* ``ganzoo import weights``: ``imported`` (where the upstream files came from) instead.

An exported **safetensors** file holds G's state dict; its metadata ``format``
(:data:`SAFETENSORS_FORMAT`), ``recipe`` (JSON), ``generator``, ``ema`` and ``step``.
A **Hub folder** holds :data:`MODEL_FILE` (that safetensors file), ``recipe.yaml``,
``config.json`` (``format`` :data:`HUB_FORMAT`), ``README.md`` and maybe ``samples.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: ``format`` of a checkpoint dict.
FORMAT = "ganzoo-checkpoint-1"
#: ``format`` value in the metadata of an exported safetensors generator.
SAFETENSORS_FORMAT = "ganzoo-generator-1"
#: ``format`` of a Hub folder's config.json.
HUB_FORMAT = "ganzoo-hub-1"
#: The file of a Hub folder (and repository) that holds the generator.
MODEL_FILE = "model.safetensors"


@dataclass(frozen=True)
class GeneratorInfo:
    """Where a loaded generator came from."""

    path: Path  # the file the weights were read from
    kind: str  # "checkpoint" or "safetensors"
    step: int | None  # training step of the weights, when known
    ema: bool  # True when these are the EMA weights

    def describe(self) -> str:
        """One line, e.g. 'step 3000 of runs/x/checkpoints/step_00003000.pt (EMA weights)'."""
        step = f"step {self.step} of " if self.step is not None else ""
        weights = "EMA weights" if self.ema else "raw generator weights"
        return f"{step}{self.path} ({weights})"


def checkpoint_header(
    recipe: dict[str, Any], step: int, epoch: int, samples_in_epoch: int
) -> dict[str, Any]:
    """The keys every checkpoint starts with (see the module docstring); the writer adds the
    networks and, for a training checkpoint, the rest of its state."""
    return {
        "format": FORMAT,
        "recipe": recipe,
        "step": step,
        "epoch": epoch,
        "samples_in_epoch": samples_in_epoch,
    }


def ema_weights(ema_state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """G's state dict out of a ``torch.optim.swa_utils.AveragedModel`` state dict
    (keys ``module.<name>`` plus the ``n_averaged`` counter)."""
    prefix = "module."
    return {k[len(prefix) :]: v for k, v in ema_state.items() if k.startswith(prefix)}
