"""An ablation spec expanded into variants (the cartesian product of its axes), each one a
validated recipe, built on the meta device before anything trains."""

from __future__ import annotations

import copy
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ganzoo import registry
from ganzoo.ablation.spec import (
    PROTECTED,
    AblationSpec,
    EvalSettings,
    is_spec,
    parse_seeds,
    quick_spec,
    spec_from_dict,
    value_label,
)
from ganzoo.build import check_recipe
from ganzoo.data import resolve_root
from ganzoo.errors import DataError, GanzooError, RecipeError
from ganzoo.recipe import Recipe, from_dict
from ganzoo.recipe_tree import apply_overrides, deep_merge, load_tree, read_yaml, renamed_section

#: Joins the labels of several axes into a variant name: ``patchgan+0.0001``.
LABEL_JOIN = "+"


def run_name(variant: str, seed: int) -> str:
    """The folder of ``variant``'s run with ``seed`` under ``OUT/runs``."""
    return f"{variant}__seed{seed}"


@dataclass(frozen=True)
class Variant:
    """One point of the axes grid: its name, ``axis -> label``, and its recipe tree (budget
    applied; the seed is set per run by :meth:`recipe`)."""

    name: str
    values: dict[str, str]
    tree: dict[str, Any] = field(repr=False)

    def recipe(self, seed: int) -> Recipe:
        """The validated recipe of this variant trained with ``seed``."""
        tree = copy.deepcopy(self.tree)
        tree["seed"] = seed
        return from_dict(tree, source=f"variant {self.name}")

    def run_name(self, seed: int) -> str:
        """The folder of this variant's run with ``seed`` under ``OUT/runs``."""
        return run_name(self.name, seed)


@dataclass(frozen=True)
class Plan:
    """Everything an ablation trains: variants x seeds, one budget, one evaluation."""

    name: str
    base: str
    overrides: list[str]
    axes: list[str]
    variants: list[Variant]
    seeds: list[int]
    max_steps: int
    eval: EvalSettings
    launcher: dict[str, Any] = field(default_factory=dict)  # the spec's, not in the manifest

    def runs(self) -> list[tuple[Variant, int]]:
        """(variant, seed) in training order: every variant of the first seed first, so a
        first comparison is available early."""
        return [(v, s) for s in self.seeds for v in self.variants]

    def manifest(self) -> dict[str, Any]:
        """What ``ablation.json`` records, enough to rebuild the report without the spec."""
        return {
            "format": "ganzoo-ablation-1",
            "name": self.name,
            "base": self.base,
            "overrides": list(self.overrides),
            "axes": list(self.axes),
            "budget": {"max_steps": self.max_steps},
            "seeds": list(self.seeds),
            "eval": self.eval.model_dump(),
            "variants": [{"name": v.name, "values": dict(v.values)} for v in self.variants],
        }


def set_value(tree: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``tree`` with ``key`` (dotted) set to ``value``: a mapping is deep-merged (a component
    section whose ``name`` changes is replaced whole), anything else is assigned as by
    ``--set key=value`` (a changed ``<component>.name`` drops that component's params)."""
    if isinstance(value, dict):
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        return deep_merge(tree, nested)
    raw = yaml.safe_dump(value, default_flow_style=True)
    return apply_overrides(tree, [f"{key}={raw}"])


def _axis_points(values: list[Any] | dict[str, Any]) -> list[tuple[str, Any]]:
    if isinstance(values, dict):
        return list(values.items())
    return [(value_label(v), v) for v in values]


def _get(recipe: Recipe, dotted: str) -> Any:
    node: Any = recipe
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def _with_prefix(exc: GanzooError, prefix: str) -> GanzooError:
    return type(exc)(f"{prefix}: {exc}")


#: Recipe sections that hold one registered component, by dotted path, and its kind.
COMPONENT_SECTIONS = {
    ("generator",): "generator",
    ("discriminator",): "discriminator",
    ("loss", "objective"): "objective",
}


def swap_component(tree: dict[str, Any], key: str, name: Any) -> dict[str, Any] | None:
    """For a plain ``<component>.name`` axis value: ``tree`` with that component replaced by
    ``name``, keeping every base parameter the new component also takes (``ndf``, ``norm``,
    ...), so the variants differ in the component alone. None for any other key."""
    parts = tuple(key.split("."))
    kind = COMPONENT_SECTIONS.get(parts[:-1])
    if parts[-1] != "name" or kind is None or not isinstance(name, str):
        return None
    out = copy.deepcopy(tree)
    parent: Any = out
    for part in parts[:-2]:
        parent = parent.setdefault(part, {})
    section = parent.get(parts[-2], {})
    if isinstance(section, str):
        section = {"name": section}
    registry.get(kind, name)  # an unknown name: the registry's one line, did-you-mean
    parent[parts[-2]] = renamed_section(kind, section, name)
    return out


def build_plan(spec: AblationSpec, overrides: list[str] | None = None) -> Plan:
    """Expand ``spec`` (``overrides`` apply to its base recipe) and validate every variant:
    pydantic, then G and D built on the meta device. Raises one-line errors naming the
    variant; nothing is trained."""
    overrides = list(overrides or [])
    where = str(spec.source) if spec.source is not None else "ablation"
    base_path = spec.base_path()
    if not base_path.is_file():
        raise RecipeError(f"{where}: base: {base_path} is not a recipe file")
    tree = apply_overrides(load_tree(base_path), overrides)
    tree = apply_overrides(tree, [f"train.max_steps={spec.budget.max_steps}"])
    tree["seed"] = spec.seeds[0]
    base = from_dict(tree, source=str(base_path))
    root = resolve_root(base.data.root)
    if not root.is_dir():
        raise DataError(
            f"{base_path}: data.root {base.data.root} does not exist here; point at the dataset "
            "with --set data.root=PATH"
        )

    axes = list(spec.axes)
    points = [_axis_points(spec.axes[key]) for key in axes]
    variants = []
    for combo in itertools.product(*points):
        labels = {key: label for key, (label, _) in zip(axes, combo)}
        name = LABEL_JOIN.join(labels.values())
        vtree = copy.deepcopy(tree)
        for key, (label, value) in zip(axes, combo):
            try:
                swapped = swap_component(vtree, key, value)
                vtree = swapped if swapped is not None else set_value(vtree, key, value)
            except GanzooError as exc:
                raise RecipeError(f"{where}: axes.{key}.{label}: {exc}") from None
        try:
            recipe = from_dict(vtree, source=f"variant {name}")
        except GanzooError as exc:
            raise _with_prefix(exc, where) from None
        try:
            check_recipe(recipe)
        except GanzooError as exc:
            raise _with_prefix(exc, f"{where}: variant {name}") from None
        for key in PROTECTED:
            if _get(recipe, key) != _get(base, key):
                raise RecipeError(
                    f"{where}: variant {name} changes {key} ({_get(base, key)!r} -> "
                    f"{_get(recipe, key)!r}); it must be the same for every variant"
                )
        variants.append(Variant(name, labels, recipe.to_dict()))
    return Plan(
        name=spec.display_name(),
        base=os.path.normpath(base_path),
        overrides=overrides,
        axes=axes,
        variants=variants,
        seeds=list(spec.seeds),
        max_steps=spec.budget.max_steps,
        eval=spec.eval,
        launcher=dict(spec.launcher or {}),
    )


def load_plan(
    path: str | Path,
    overrides: list[str] | None = None,
    *,
    vary: list[str] | None = None,
    seeds: list[int] | str | None = None,
    steps: int | None = None,
) -> Plan:
    """The plan of ``ganzoo ablate PATH``: ``PATH`` is a spec (it has ``axes:``) or a recipe
    with ``vary`` (``['discriminator.name=patchgan,multiscale']``). ``seeds`` and ``steps``
    replace the spec's seeds and budget."""
    path = Path(path)
    if isinstance(seeds, str):
        seeds = parse_seeds(seeds)
    if steps is not None and steps < 1:
        raise RecipeError(f"--steps {steps}: the budget must be at least 1 step")
    tree = read_yaml(path)
    if is_spec(tree):
        if vary:
            raise RecipeError(
                f"{path} is an ablation spec: add the axis under `axes:` instead of --vary"
            )
        if seeds is not None:
            tree["seeds"] = seeds
        if steps is not None:
            tree["budget"] = {"max_steps": steps}
        spec = spec_from_dict(tree, source=path)
    else:
        recipe_tree = apply_overrides(load_tree(path), list(overrides or []))
        max_steps = (recipe_tree.get("train") or {}).get("max_steps")
        spec = quick_spec(
            path,
            list(vary or []),
            seeds=seeds,
            steps=steps,
            max_steps=max_steps if isinstance(max_steps, int) else None,
        )
    return build_plan(spec, overrides)
