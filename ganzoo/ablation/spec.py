"""Ablation specs: a base recipe, axes of variants, seeds and a step budget, in YAML.

::

    base: ../pix2pix_unet256.yaml      # relative to the spec file
    budget: {max_steps: 2000}
    seeds: [0, 1, 2]
    axes:
      discriminator:                     # a named block per variant
        patchgan:   {name: patchgan, n_layers: 3}
        multiscale: {name: multiscale, num_d: 3}
      optim.lr_d: [0.0002, 0.0001]       # or a plain list of values
    launcher: {name: submitit, partition: gpu, gpus_per_node: 1}   # optional, see launchers

Structure is validated by pydantic (unknown keys rejected); axes by :func:`check_axes`. Every
error is one line naming the dotted path, e.g. ``axes.seed: ...``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from ganzoo.errors import RecipeError, did_you_mean
from ganzoo.params import format_validation_error
from ganzoo.recipe import Recipe
from ganzoo.recipe_tree import read_yaml

#: Recipe keys every variant must share; the spec sets them (``seeds``, ``budget``) or the base.
PROTECTED = (
    "seed",
    "train.max_steps",
    "train.log_every",
    "train.sample_every",
    "train.val_batches",
    "data.root",
    "data.val_split",
)

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SCALARS = (str, int, float, bool, type(None))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budget(_Strict):
    """What every variant gets: ``train.max_steps`` generator steps."""

    max_steps: int = Field(ge=1)


class EvalSettings(_Strict):
    """How every variant is scored once trained (``ganzoo.evaluation.evaluate_run``)."""

    split: str = "val"
    mode: Literal["auto", "eval", "train"] = "auto"
    samples: int = Field(4, ge=1, le=32, description="rows of samples.png")


class AblationSpec(_Strict):
    """A validated ablation spec; ``base`` stays as written (resolve with :meth:`base_path`)."""

    name: str | None = None
    base: str
    budget: Budget
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    axes: dict[str, Any] = Field(min_length=1)
    launcher: dict[str, Any] | None = Field(
        None, description="where the runs execute: {name: submitit, partition: gpu, ...}"
    )
    _source: Path | None = PrivateAttr(None)  # the spec file, set by spec_from_dict

    @property
    def source(self) -> Path | None:
        """The spec file, when the spec came from one."""
        return self._source

    @field_validator("name")
    @classmethod
    def _file_safe(cls, name: str | None) -> str | None:
        if name is not None and not _LABEL.fullmatch(name):
            raise ValueError(
                f"'{name}' names the output folder: use letters, digits, '.', '_' and '-'"
            )
        return name

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds

    def base_path(self) -> Path:
        """The base recipe: relative to the spec file when there is one."""
        base = Path(self.base).expanduser()
        if self.source is None or base.is_absolute():
            return base
        return self.source.parent / base

    def display_name(self) -> str:
        if self.name:
            return self.name
        return value_label(self.source.stem if self.source is not None else Path(self.base).stem)


def is_spec(tree: dict[str, Any]) -> bool:
    """An ablation spec has ``axes``; a recipe does not."""
    return "axes" in tree


def spec_from_dict(tree: dict[str, Any], source: Path | None = None) -> AblationSpec:
    """Validate a spec mapping; one-line :class:`RecipeError` naming the dotted path."""
    where = str(source) if source is not None else "ablation spec"
    try:
        spec = AblationSpec.model_validate(tree)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "value_error":
            loc = ".".join(str(x) for x in err["loc"])
            msg = str(err["ctx"].get("error", err["msg"]))
            raise RecipeError(f"{where}: {loc}: {msg}") from None
        raise RecipeError(f"{where}: {format_validation_error(exc, '')}") from None
    spec._source = source
    check_axes(spec.axes, where)
    return spec


def load_spec(path: str | Path) -> AblationSpec:
    """Read and validate the spec file ``path``."""
    path = Path(path)
    return spec_from_dict(read_yaml(path), source=path)


def check_axes(axes: dict[str, Any], where: str) -> None:
    """Axis keys are dotted recipe keys outside :data:`PROTECTED`; values a non-empty list of
    scalars or a non-empty mapping ``label -> value``; labels are file-name safe."""
    for key, values in axes.items():
        path = f"axes.{key}"
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise RecipeError(f"{where}: {path}: an axis is a dotted recipe key, e.g. optim.lr_d")
        section = key.split(".")[0]
        if section not in Recipe.model_fields:
            hint = did_you_mean(section, Recipe.model_fields)
            hint = f"; {hint}" if hint else ""
            raise RecipeError(f"{where}: {path}: '{section}' is not a recipe section{hint}")
        for protected in PROTECTED:  # whole sections are checked after merging (plan.py)
            if key == protected or key.startswith(protected + "."):
                raise RecipeError(f"{where}: {path}: {_why_protected(protected)}")
        if isinstance(values, list):
            if not values:
                raise RecipeError(f"{where}: {path}: give at least one value")
            for i, value in enumerate(values):
                if not isinstance(value, _SCALARS):
                    raise RecipeError(
                        f"{where}: {path}[{i}]: a list holds plain values; for a block of "
                        "parameters name it: `{axis}: {label: {...}}`".replace("{axis}", key)
                    )
            labels = [value_label(v) for v in values]
            _check_distinct(labels, where, path)
        elif isinstance(values, dict):
            if not values:
                raise RecipeError(f"{where}: {path}: give at least one named variant")
            for label in values:
                if not isinstance(label, str) or not _LABEL.fullmatch(label):
                    raise RecipeError(
                        f"{where}: {path}.{label}: a variant label uses letters, digits, "
                        "'.', '_' and '-' and starts with a letter or digit"
                    )
        else:
            raise RecipeError(
                f"{where}: {path}: expected a list of values or a mapping of named variants, "
                f"got {type(values).__name__}"
            )


def _why_protected(key: str) -> str:
    if key == "seed":
        return "seeds are listed under `seeds:`, not as an axis"
    if key == "train.max_steps":
        return "every variant gets the same `budget: {max_steps: N}`; it is not an axis"
    return f"{key} must be the same for every variant (fairness); set it in the base recipe"


def _check_distinct(labels: list[str], where: str, path: str) -> None:
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise RecipeError(f"{where}: {path}: two values share the label '{label}'")
        seen.add(label)


def value_label(value: Any) -> str:
    """A plain axis value as a file-name-safe label: 'patchgan', '0.0002', 'true'."""
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "value"


def parse_vary(items: list[str]) -> dict[str, list[Any]]:
    """``['discriminator.name=patchgan,multiscale']`` -> ``{'discriminator.name': ['patchgan',
    'multiscale']}``; each value is parsed as YAML (``0.001`` is a number)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise RecipeError(
                f"--vary {item!r}: expected dotted.key=v1,v2,..., e.g. "
                "discriminator.name=patchgan,multiscale"
            )
        if key in axes:
            raise RecipeError(f"--vary {item!r}: {key} is varied twice; list its values once")
        values = []
        for text in raw.split(","):
            text = text.strip()
            if not text:
                raise RecipeError(f"--vary {item!r}: an empty value between commas")
            try:
                values.append(yaml.safe_load(text))
            except yaml.YAMLError:
                values.append(text)
        axes[key] = values
    return axes


def parse_seeds(text: str) -> list[int]:
    """``'0,1,2'`` -> ``[0, 1, 2]``."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise RecipeError(
            f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2"
        ) from None
    if not seeds:
        raise RecipeError(f"--seeds {text!r}: give at least one seed, e.g. 0,1,2")
    return seeds


def quick_spec(
    recipe_path: str | Path,
    vary: list[str],
    *,
    seeds: list[int] | None = None,
    steps: int | None = None,
    max_steps: int | None = None,
) -> AblationSpec:
    """The spec of ``ganzoo ablate RECIPE --vary k=a,b [--seeds ..] [--steps N]``.

    ``max_steps`` is the recipe's own ``train.max_steps``, the budget when ``steps`` is None.
    """
    recipe_path = Path(recipe_path)
    if not vary:
        raise RecipeError(
            f"{recipe_path} is a recipe, not an ablation spec (no `axes:`); say what to vary "
            "with --vary dotted.key=v1,v2 or give a spec file"
        )
    budget = steps if steps is not None else max_steps
    if budget is None:
        raise RecipeError(
            f"{recipe_path}: give the step budget of every variant with --steps N "
            "(the recipe sets no train.max_steps)"
        )
    axes = parse_vary(vary)
    name = value_label(f"{recipe_path.stem}-{'-'.join(axes)}")
    tree = {"name": name, "base": str(recipe_path), "budget": {"max_steps": budget}, "axes": axes}
    if seeds is not None:
        tree["seeds"] = seeds
    return spec_from_dict(tree, source=None)
