"""Where a run's metrics also go: TensorBoard, Weights & Biases, MLflow, or a plugin's logger.

A logger is a component of the registry kind ``logger`` (entry-point group ``ganzoo.loggers``),
built as ``Cls(run_dir, **params)`` from ``train.loggers`` and driven by the trainer through
the :class:`~ganzoo.loggers.base.Logger` interface. ``RUN_DIR/metrics.jsonl`` is always written
and stays the source of truth; a logger that fails is reported once and dropped, never taking
the run down.
"""

from ganzoo.loggers import mlflow, tensorboard, wandb  # noqa: F401  (registers the loggers)
from ganzoo.loggers.base import Logger, RunInfo

__all__ = ["Logger", "RunInfo"]
