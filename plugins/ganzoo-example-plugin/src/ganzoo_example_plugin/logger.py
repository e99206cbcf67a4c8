"""A logger registered through the ``ganzoo.loggers`` group: every scalar to a CSV file."""

from __future__ import annotations

import csv
from pathlib import Path

from ganzoo.loggers import Logger, RunInfo


class CsvLogger(Logger):
    """Writes ``RUN_DIR/scalars.csv`` (or ``path``): one ``step,name,value`` row per scalar,
    appended across resumes, and ``final,name,value`` rows at the end."""

    def __init__(self, run_dir: Path, path: str | None = None) -> None:
        self.path = Path(path) if path else Path(run_dir) / "scalars.csv"

    def start(self, info: RunInfo) -> None:
        if not self.path.exists():
            self.path.write_text("step,name,value\n")

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for name, value in values.items():
                writer.writerow([step, name, value])

    def finish(self, final: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for name, value in final.items():
                writer.writerow(["final", name, value])
