"""Where the runs of an ablation execute: one after another here, in a pool of processes here,
or as cluster jobs, or through a plugin's launcher.

A launcher is a component of the registry kind ``launcher`` (entry-point group
``ganzoo.launchers``), built as ``Cls(**params)`` and driven through
:class:`~ganzoo.launchers.base.Launcher`: ``launch(jobs, out, console)`` runs every
:class:`~ganzoo.ablation.job.RunJob` (each through :func:`ganzoo.ablation.job.execute`) and
returns their outcomes.
"""

from ganzoo.launchers import local, sequential, slurm  # noqa: F401  (registers the launchers)
from ganzoo.launchers.base import Launcher

__all__ = ["Launcher"]
