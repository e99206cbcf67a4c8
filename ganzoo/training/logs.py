"""Where a run's records go: ``RUN_DIR/metrics.jsonl``, one JSON object per line, always
written (rank 0 only) and the source of truth for plots, reports and ablations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends records to a JSONL file; ``enabled=False`` (non-zero ranks) drops them."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
