"""Trainer events: what runs around the explicit GAN step (as Lightning's ``Callback``).

The loop (:class:`~ganzoo.training.trainer.Trainer`) runs :class:`~ganzoo.training.step.
UpdateStep` and tells its callbacks, in the order of ``train.callbacks``:

* ``on_fit_start(trainer)``: before the first step of this session (fresh or resumed);
* ``on_step_end(trainer, losses)``: after each step, ``losses`` the step's detached tensors;
* ``on_log(trainer, record)``: a loss record was written to ``metrics.jsonl``;
* ``on_validation_end(trainer, record)``: a validation record was written (rank 0 only);
* ``on_epoch_end(trainer)``: an epoch ended (``trainer.epoch`` is the next one);
* ``on_checkpoint(trainer, path)``: a checkpoint was written (``path`` None on ranks > 0);
* ``on_exception(trainer, exc)``: the run stops on ``exc`` (re-raised afterwards);
* ``on_fit_end(trainer, final)``: the run ended normally, ``final`` its last records merged.

A callback's :meth:`Callback.state_dict` is saved in every checkpoint under ``"callbacks"``
(keyed by its name in ``train.callbacks``; left out when every state is empty) and handed back
to :meth:`Callback.load_state_dict` on ``--resume``; it must hold what ``torch.load(...,
weights_only=True)`` reads: tensors, numbers, strings, lists and dicts. A callback is a
component of the registry kind ``callback`` (entry-point group ``ganzoo.callbacks``), built as
``Cls(**params)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # importing this module (a registry lookup) imports none of these
    import torch
    from rich.console import Console

    from ganzoo.recipe import Recipe
    from ganzoo.run_dir import RunDir
    from ganzoo.training.batches import BatchSource
    from ganzoo.training.distributed import DistInfo
    from ganzoo.training.logs import RunLogs
    from ganzoo.training.state import TrainState


class Trainer(Protocol):
    """What a callback sees of the running :class:`ganzoo.training.trainer.Trainer` (declared
    here, so that callbacks never import the trainer that builds them)."""

    recipe: Recipe
    run: RunDir
    dist: DistInfo
    device: torch.device
    console: Console
    show_progress: bool
    state: TrainState
    logs: RunLogs
    train_batches: BatchSource
    total_steps: int
    callbacks: CallbackList

    @property
    def step(self) -> int: ...

    @property
    def epoch(self) -> int: ...

    def validate(self, metric_set: Any = None) -> dict[str, float]: ...

    def save(self) -> Path | None: ...

    def checkpoint_state(self) -> dict[str, Any]: ...

    def log_record(self, record: dict[str, Any], event: str | None = None) -> None: ...

    def request_stop(self, reason: str) -> None: ...


#: The events, in the order a step may raise them.
EVENTS = (
    "on_fit_start",
    "on_step_end",
    "on_log",
    "on_validation_end",
    "on_epoch_end",
    "on_checkpoint",
    "on_exception",
    "on_fit_end",
)
#: The checkpoint key holding the callbacks' states.
CHECKPOINT_KEY = "callbacks"


class Callback:
    """Does nothing on every event; subclass it and override the events you need."""

    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, losses: dict[str, torch.Tensor]) -> None:
        pass

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        pass

    def on_validation_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer) -> None:
        pass

    def on_checkpoint(self, trainer: Trainer, path: Path | None) -> None:
        pass

    def on_exception(self, trainer: Trainer, exc: BaseException) -> None:
        pass

    def on_fit_end(self, trainer: Trainer, final: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this callback (empty: nothing)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class CallbackList:
    """Named callbacks called in order; ``emit(event, trainer, ...)`` tells each of them."""

    def __init__(self, named: Iterable[tuple[str, Callback]]) -> None:
        self.named: list[tuple[str, Callback]] = []
        seen: dict[str, int] = {}
        for name, callback in named:
            seen[name] = seen.get(name, 0) + 1
            key = name if seen[name] == 1 else f"{name}#{seen[name]}"
            self.named.append((key, callback))

    def __iter__(self):  # noqa: ANN204
        return (callback for _, callback in self.named)

    def emit(self, event: str, trainer: Trainer, *args: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown trainer event {event!r}")
        for _, callback in self.named:
            getattr(callback, event)(trainer, *args)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """``{key: state}`` of the callbacks with a non-empty state."""
        states = {}
        for key, callback in self.named:
            state = callback.state_dict()
            if state:
                states[key] = state
        return states

    def load_state_dict(self, states: dict[str, dict[str, Any]]) -> None:
        """Hand each callback its saved state (an older checkpoint has none: nothing to do)."""
        for key, callback in self.named:
            if key in states:
                callback.load_state_dict(states[key])


def build_callbacks(sections: Iterable[Any]) -> CallbackList:
    """The recipe's ``train.callbacks`` sections built through the registry."""
    from ganzoo import registry

    return CallbackList(
        (section.name, registry.create("callback", section.name, **section.params))
        for section in sections
    )
