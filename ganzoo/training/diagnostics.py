"""Is my training working? Warnings from the logged records, once each per run.

Two patterns, the most frequent complaints in the pix2pix family's issue trackers:

* **the discriminator wins outright**: for ``PATIENCE`` log intervals in a row D classifies
  almost every patch right (``d_acc`` >= ``WIN_ACCURACY``: real outputs above, fake ones below
  the objective's decision threshold) while G's GAN loss climbs;
* **a loss diverges**: a loss more than ``DIVERGE_FACTOR`` times its value in the first log
  intervals and still rising for ``PATIENCE`` intervals.

Each warning is one line saying what users usually change.
"""

from __future__ import annotations

from typing import Any

from ganzoo import records
from ganzoo.run_records import is_number

#: Log intervals a pattern must hold for before it is reported.
PATIENCE = 3
#: D accuracy above which D is "winning outright".
WIN_ACCURACY = 0.95
#: How many times its early level a loss must grow to count as diverging.
DIVERGE_FACTOR = 10.0
#: Intervals that set a loss's early level (their median).
BASELINE = 3

D_WINS = (
    "the discriminator is winning outright (it classifies {acc:.0%} of patches right and G's GAN "
    "loss has risen for {n} log intervals): G is learning little from it; usual remedies: a "
    "lower optim.lr_d or several G steps per D step, loss.objective: lsgan, spectral_norm: true "
    "on the discriminator, or a smaller discriminator (fewer layers, ndf)"
)
DIVERGES = (
    "{name} is diverging ({value:.4g}, {factor:.0f}x its early level, rising for {n} log "
    "intervals); usual remedies: lower learning rates (optim.lr_g, optim.lr_d), "
    "train.precision: fp32, spectral norm, or gradient-friendly objectives (lsgan, hinge)"
)


class TrainingMonitor:
    """Feed it every loss record (``observe``); it returns the warnings due, each once.

    It keeps per key only what the patterns read (a loss's first :data:`BASELINE` values and
    everyone's last ``PATIENCE + 1``), so its memory is bounded and its state (``state_dict``)
    goes into every checkpoint: a resumed run warns as the uninterrupted one would."""

    def __init__(self) -> None:
        self.early: dict[str, list[float]] = {}  # a key's first BASELINE values
        self.recent: dict[str, list[float]] = {}  # its last PATIENCE + 1
        self.seen: dict[str, int] = {}  # how many values of it were observed
        self.warned: set[str] = set()

    def observe(self, record: dict[str, Any]) -> list[str]:
        for key, value in record.items():
            if is_number(value) and (records.is_loss(key) or key == "d_acc"):
                self._keep(key, float(value))
        out = []
        win = self._discriminator_wins()
        if win and "d_wins" not in self.warned:
            self.warned.add("d_wins")
            out.append(win)
        for name in sorted(k for k in record if records.is_loss(k)):
            if name not in self.warned:
                message = self._diverges(name)
                if message:
                    self.warned.add(name)
                    out.append(message)
        return out

    def _keep(self, key: str, value: float) -> None:
        early = self.early.setdefault(key, [])
        if len(early) < BASELINE:
            early.append(value)
        recent = self.recent.setdefault(key, [])
        recent.append(value)
        del recent[: -(PATIENCE + 1)]
        self.seen[key] = self.seen.get(key, 0) + 1

    def _recent(self, key: str, n: int) -> list[float] | None:
        values = self.recent.get(key, [])
        return values[-n:] if len(values) >= n else None

    def _discriminator_wins(self) -> str | None:
        acc = self._recent("d_acc", PATIENCE)
        gan = self._recent("loss_g_gan", PATIENCE + 1)
        if acc is None or gan is None:
            return None
        rising = all(b > a for a, b in zip(gan, gan[1:]))
        if min(acc) >= WIN_ACCURACY and rising:
            return D_WINS.format(acc=min(acc), n=PATIENCE)
        return None

    def _diverges(self, name: str) -> str | None:
        if self.seen.get(name, 0) < BASELINE + PATIENCE + 1:
            return None
        early = sorted(abs(v) for v in self.early[name])[BASELINE // 2]
        recent = self.recent[name]
        rising = all(b > a for a, b in zip(recent, recent[1:]))
        if early > 0 and rising and recent[-1] > DIVERGE_FACTOR * early:
            return DIVERGES.format(
                name=name, value=recent[-1], factor=recent[-1] / early, n=PATIENCE
            )
        return None

    def state_dict(self) -> dict[str, Any]:
        """Plain lists, numbers and strings (a ``weights_only`` checkpoint holds them)."""
        return {
            "early": self.early,
            "recent": self.recent,
            "seen": self.seen,
            "warned": sorted(self.warned),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.early = {k: [float(v) for v in vs] for k, vs in state.get("early", {}).items()}
        self.recent = {k: [float(v) for v in vs] for k, vs in state.get("recent", {}).items()}
        self.seen = {k: int(v) for k, v in state.get("seen", {}).items()}
        self.warned = set(state.get("warned", []))
