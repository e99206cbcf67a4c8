"""What :func:`ganzoo.train`, :func:`ganzoo.ablate` and :func:`ganzoo.evaluate` return: typed
records instead of the trainer's and the scorer's dictionaries (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganzoo.ablation.report import Report
    from ganzoo.ablation.runner import RunOutcome


@dataclass(frozen=True)
class TrainResult:
    """One finished (or stopped) training: where it is and what it left.

    ``stopped`` names the signal that ended it early (``'SIGINT'``, ``'SIGTERM'``; a checkpoint
    was saved first) or is None; ``distributed``: one rank of a torchrun run, ``is_main`` False
    on all ranks but the first; ``record`` is the trainer's final record (step, losses,
    validation metrics, checkpoint)."""

    run_dir: Path
    checkpoint: Path | None  # the last one saved (None on a rank that saves none)
    step: int
    samples: Path | None = None  # the newest sample sheet, if any
    stopped: str | None = None
    is_main: bool = True
    distributed: bool = False
    record: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class EvalRecord:
    """One ``ganzoo eval``: the scores of a generator on a split (L1 in [-1, 1], PSNR in dB,
    SSIM; LPIPS and DISTS when their weights are cached; FID and KID when asked) and the files
    written. ``notes``: one line per metric left out and why. ``record`` is the JSON written
    to ``json``, every key included."""

    recipe: str
    split: str
    step: int
    n: int
    l1: float
    psnr: float
    ssim: float
    mode: str  # as asked (auto, eval, train)
    mode_used: str  # what ran: eval, train or per-sample
    mode_line: str  # why, in one line
    ema: bool
    checkpoint: Path
    json: Path
    sheet: Path | None = None
    fid: float | None = None
    kid: float | None = None
    kid_std: float | None = None
    lpips_alex: float | None = None
    lpips_vgg: float | None = None
    dists: float | None = None
    notes: tuple[str, ...] = ()
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvalRecord:
        """The typed view of :func:`ganzoo.evaluation.evaluate.evaluate_run`'s record."""

        def path(key: str) -> Path | None:
            return Path(record[key]) if record.get(key) is not None else None

        return cls(
            recipe=record["recipe"],
            split=record["split"],
            step=int(record["step"]),
            n=int(record["n"]),
            l1=float(record["l1"]),
            psnr=float(record["psnr"]),
            ssim=float(record["ssim"]),
            mode=record["mode"],
            mode_used=record["mode_used"],
            mode_line=record["mode_line"],
            ema=bool(record["ema"]),
            checkpoint=Path(record["checkpoint"]),
            json=Path(record["json"]),
            sheet=path("sheet"),
            fid=record.get("fid"),
            kid=record.get("kid"),
            kid_std=record.get("kid_std"),
            lpips_alex=record.get("lpips_alex"),
            lpips_vgg=record.get("lpips_vgg"),
            dists=record.get("dists"),
            notes=tuple(record.get("notes") or ()),
            record=dict(record),
        )


@dataclass(frozen=True)
class AblationResult:
    """One ``ganzoo ablate`` launch: what happened to every run, and the report written (None
    when no run finished or was scored yet). Failed, stopped and claimed runs are retried by
    launching the same ablation again."""

    name: str
    out: Path
    outcomes: list[RunOutcome]
    report: Report | None = None

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that failed or were stopped (their errors are in the report or OUT/logs)."""
        return [o for o in self.outcomes if o.action in ("failed", "stopped")]

    @property
    def claimed(self) -> list[RunOutcome]:
        """Runs left alone because another live launch holds them."""
        return [o for o in self.outcomes if o.action == "claimed"]

    @property
    def ok(self) -> bool:
        """True when every run finished (none failed, stopped or held by another launch)."""
        return not self.failed and not self.claimed

    @property
    def signum(self) -> int | None:
        """The signal that stopped a run of this launch (its exit status is 128 + it), or None."""
        return next((o.signum for o in self.outcomes if o.signum), None)

    def failure_message(self) -> str | None:
        """The one line ``ganzoo ablate`` exits with, or None when every run finished (an
        unfinished ablation, failed or held by another launch, never exits 0)."""
        failed, claimed = self.failed, self.claimed
        if not failed and not claimed:
            return None
        where = self.out / "results.md" if self.report is not None else self.out / "logs"
        parts = [f"{len(failed)} run(s) failed or stopped " if failed else ""]
        if failed:
            parts[0] += f"({', '.join(o.run_dir.name for o in failed)}; errors in {where})"
        if claimed:
            names = ", ".join(o.run_dir.name for o in claimed)
            parts.append(f"{len(claimed)} run(s) unfinished, held by another launch ({names})")
        return "; ".join(p for p in parts if p) + "; run the same command again to retry them"
