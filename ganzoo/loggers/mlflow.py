"""MLflow tracking (``pip install 'ganzoo[mlflow]'``: mlflow-skinny with SQLAlchemy and
Alembic, which its database stores need): a tracking server, or a local store
(``tracking_uri: sqlite:///mlflow.db``; MLflow 3 refuses ``file:`` stores unless
``MLFLOW_ALLOW_FILE_STORE=true``)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ganzoo.loggers.base import Logger, RunInfo, flatten
from ganzoo.registry import register

#: Tracking-URI schemes of MLflow's database stores (SQLAlchemy).
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")


def sqlalchemy_installed() -> bool:
    return importlib.util.find_spec("sqlalchemy") is not None


@register("logger", "mlflow", paper="MLflow (https://mlflow.org)")
class MlflowLogger(Logger):
    """One MLflow run per ganzoo run, in experiment ``experiment``.

    The recipe as parameters and as the artifact ``recipe.yaml``, the environment as tags,
    scalars as metrics, sample sheets as artifacts. A resume continues the same MLflow run (its
    id is kept in the run directory). ``tracking_uri`` defaults to MLflow's own
    (``MLFLOW_TRACKING_URI``).
    """

    def __init__(
        self, run_dir: Path, tracking_uri: str | None = None, experiment: str = "ganzoo"
    ) -> None:
        self.run_dir = Path(run_dir)
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.client: Any = None
        self.run_id: str | None = None
        for key, value in HTTP_DEFAULTS.items():  # what the environment sets wins
            os.environ.setdefault(key, value)

    def start(self, info: RunInfo) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or mlflow.get_tracking_uri()
        database = uri.split(":", 1)[0].split("+", 1)[0]
        if database in DATABASES and not sqlalchemy_installed():
            # mlflow-skinny alone then fails on the model registry (UnsupportedModelRegistry...)
            raise ImportError(f"MLflow's {database} store needs SQLAlchemy and Alembic")
        try:
            self.client = MlflowClient(tracking_uri=self.tracking_uri)
        except Exception as exc:
            if "maintenance mode" in str(exc):  # MLflow 3 and a file: / plain-folder store
                raise RuntimeError(
                    f"MLflow {mlflow.__version__} refuses folder stores; use tracking_uri: "
                    "sqlite:///mlflow.db or MLFLOW_ALLOW_FILE_STORE=true"
                ) from None
            raise
        self.run_id = info.state.get("run_id")
        if self.run_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
            run = self.client.create_run(exp_id, run_name=info.name, tags=info.environment)
            self.run_id = run.info.run_id
            for key, value in flatten(info.recipe).items():
                self.client.log_param(self.run_id, key, str(value)[:500])
            self.client.log_text(self.run_id, info.recipe_yaml, "recipe.yaml")
        else:
            self.client.update_run(self.run_id, status="RUNNING")

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.client.log_metric(self.run_id, key, value, step=step)

    def log_image(self, step: int, name: str, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=name)

    def finish(self, final: dict[str, float]) -> None:
        for key, value in final.items():
            self.client.log_metric(self.run_id, f"final_{key}", value)
        self.client.set_terminated(self.run_id)

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id} if self.run_id else {}


#: MLflow's own defaults retry a request 7 times with a backoff factor of 2 and wait 120 s per
#: request: a tracking server that is down cost 250 s before the first step. Ours fail in
#: seconds (a request that hangs longer is dropped by the logger deadline anyway).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
