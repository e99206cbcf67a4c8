"""A worker process dies with its launcher, however the launcher dies (kill -9 included).

On Linux the kernel delivers a signal when the parent exits (``prctl(PR_SET_PDEATHSIG)``);
elsewhere a daemon thread polls the parent's pid. The signal is SIGTERM, so a worker in training
saves a checkpoint and stops after its current step, as on any other SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 1.0


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM, poll_s: float = POLL_S) -> str:
    """Send ``sig`` to this process when ``parent_pid`` is no longer its parent. Returns how:
    'prctl' or 'poll'. A parent already gone delivers it at once."""
    how = "poll"
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0:
                how = "prctl"
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # it died before we asked
        os.kill(os.getpid(), sig)
    elif how == "poll":
        args = (parent_pid, sig, poll_s)
        threading.Thread(target=_watch, args=args, name="ganzoo-lifeline", daemon=True).start()
    return how


def _watch(parent_pid: int, sig: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os.kill(os.getpid(), sig)
