"""Weights & Biases (``pip install 'ganzoo[wandb]'``). ``WANDB_MODE=offline`` writes the run to
``RUN_DIR/wandb`` for ``wandb sync`` later; the API key comes from the environment as the
library finds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganzoo.loggers.base import Logger, RunInfo
from ganzoo.registry import register


@register("logger", "wandb", paper="Weights & Biases (https://wandb.ai)")
class WandbLogger(Logger):
    """One W&B run per ganzoo run.

    The recipe and environment as its config, scalars and sample sheets as history, the final
    metrics as its summary. A resume continues the same W&B run (its id is kept in the run
    directory).
    """

    def __init__(
        self,
        run_dir: Path,
        project: str = "ganzoo",
        entity: str | None = None,
        tags: list[str] | None = None,
        mode: str | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.project, self.entity, self.tags, self.mode = project, entity, tags, mode
        self.run: Any = None

    def start(self, info: RunInfo) -> None:
        import wandb

        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            name=info.name,
            dir=str(self.run_dir),
            config={**info.recipe, "environment": info.environment},
            tags=self.tags,
            mode=self.mode,
            id=info.state.get("run_id"),
            resume="allow" if info.state.get("run_id") else None,
        )

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def log_image(self, step: int, name: str, path: Path) -> None:
        import wandb

        self.run.log({name: wandb.Image(str(path))}, step=step)

    def finish(self, final: dict[str, float]) -> None:
        for key, value in final.items():
            self.run.summary[key] = value
        self.run.finish()

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run.id} if self.run is not None else {}
