"""What one (variant, seed) of an ablation needs, as a picklable value: the :class:`RunJob`
that :func:`~ganzoo.ablation.runner.run_ablation` makes and a launcher hands to
:func:`~ganzoo.ablation.job.execute` (in this process, a pool worker or a SLURM job).

::

    OUT/runs/<variant>__seed<k>/   the run directory (RunJob.run_dir)
    OUT/logs/<variant>__seed<k>.log   what its training printed, and a failure's traceback
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganzoo.ablation.claims import CLAIM_TIMEOUT_S
from ganzoo.ablation.plan import Plan, Variant


@dataclass(frozen=True)
class RunJob:
    """Everything one run needs; picklable (a pool or submitit sends it to another process)."""

    out: Path
    plan: Plan
    variant: Variant
    seed: int
    threads: int | None = None  # torch threads of the run; None: leave the process's setting
    inception: str | None = None  # Inception weights file: also FID and KID
    claim_timeout_s: float = CLAIM_TIMEOUT_S

    @property
    def name(self) -> str:
        return self.variant.run_name(self.seed)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / "runs" / self.name

    @property
    def log(self) -> Path:
        return Path(self.out) / "logs" / f"{self.name}.log"
