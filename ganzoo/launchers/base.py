"""The interface every launcher implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ganzoo import registry
from ganzoo.ablation.job import RunJob
from ganzoo.ablation.runner import RunOutcome
from ganzoo.errors import RegistryError


class Launcher(ABC):
    """Runs the jobs of an ablation. Each job must go through
    :func:`ganzoo.ablation.job.execute` (claim, train, score, record), wherever it runs, with
    ``RunJob.threads`` set to the torch threads the launcher gives it."""

    @abstractmethod
    def launch(self, jobs: list[RunJob], out: Path, console: Console) -> list[RunOutcome]:
        """Run ``jobs`` (runs of the ablation directory ``out``) and return one outcome per
        job, in their order; show progress on ``console``."""


def build_launcher(
    spec: dict[str, Any] | None = None,
    name: str | None = None,
    options: dict[str, Any] | None = None,
) -> Launcher:
    """The launcher of ``ganzoo ablate``: ``name`` (else the spec's ``launcher.name``, else
    'sequential') built with the spec's parameters (when it names the same launcher) updated
    by ``options``; unknown parameters are a one-line error naming the valid ones."""
    spec = dict(spec or {})
    spec_name = spec.pop("name", None)
    chosen = name or spec_name or "sequential"
    params = spec if chosen == spec_name else {}
    params.update({k: v for k, v in (options or {}).items() if v is not None})
    launcher = registry.create("launcher", chosen, **params)
    if not isinstance(launcher, Launcher):
        raise RegistryError(f"launcher '{chosen}' is not a ganzoo.launchers.Launcher")
    return launcher


def parse_options(items: list[str]) -> dict[str, Any]:
    """``['partition=gpu', 'time=60']`` -> ``{'partition': 'gpu', 'time': 60}`` (YAML values)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"--launcher-opt {item!r}: expected key=value, e.g. partition=gpu")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            options[key.strip()] = raw
    return options
