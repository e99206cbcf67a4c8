"""Recipe trees: the plain mappings recipe files hold, before validation.

Reading a recipe file safely (bounded size and YAML expansion, UTF-8, one-line errors),
``extends:`` chains deep-merged relative to the file, and ``--set dotted.key=value``
overrides. :func:`ganzoo.recipe.load_recipe` validates the result into a
:class:`~ganzoo.recipe.Recipe`; ablations vary trees before validating them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ganzoo import registry
from ganzoo.errors import RecipeError, RegistryError, first_line

#: Recipe files larger than this are refused unread; YAML expanding to more nodes likewise.
MAX_RECIPE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML mapping from ``path``, or a one-line error.

    Refused before parsing: files over :data:`MAX_RECIPE_BYTES` and text that is not UTF-8;
    after parsing: documents whose aliases expand to more than :data:`MAX_YAML_NODES` values
    (a "billion laughs" file is refused in milliseconds, never expanded).
    """
    try:
        size = path.stat().st_size
        if size > MAX_RECIPE_BYTES:
            raise RecipeError(
                f"{path}: {size:,} bytes is too large for a recipe (at most {MAX_RECIPE_BYTES:,})"
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"{path}: no such recipe file") from None
    except IsADirectoryError:
        raise RecipeError(f"{path}: is a folder, not a recipe file") from None
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the recipe as UTF-8"
        ) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """A recipe mapping from YAML text (bounded as :func:`read_yaml` says)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or first_line(exc)
        raise RecipeError(f"{source}: malformed YAML{where}: {problem}") from None
    except RecursionError:
        raise RecipeError(f"{source}: YAML nested too deeply for a recipe") from None
    if expanded_size(data, MAX_YAML_NODES) > MAX_YAML_NODES:
        raise RecipeError(
            f"{source}: the YAML expands to more than {MAX_YAML_NODES:,} values (aliases "
            "repeating aliases?); a recipe is far smaller"
        )
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{source}: a recipe must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def expanded_size(value: Any, limit: int) -> int:
    """How many values ``value`` holds once shared references (YAML aliases) are expanded,
    counted in time linear in the distinct objects; stops counting past ``limit``."""
    sizes: dict[int, int] = {}

    def size(v: Any, depth: int) -> int:
        if not isinstance(v, (dict, list)):
            return 1
        key = id(v)
        if key in sizes:
            return sizes[key]
        if depth > 100:
            return limit + 1
        sizes[key] = limit + 1  # a reference cycle counts as unbounded
        children = list(v.items()) if isinstance(v, dict) else v
        total = 1
        for child in children:
            parts = child if isinstance(v, dict) else (child,)
            for part in parts:
                total += size(part, depth + 1)
                if total > limit:
                    sizes[key] = limit + 1
                    return limit + 1
        sizes[key] = total
        return total

    return size(value, 0)


#: Sections whose parameters belong to the named component, with its registry kind: renaming
#: it in a recipe file replaces the section; renaming it with ``--set`` keeps the parameters
#: the new component also takes (see :func:`renamed_section`).
_REPLACED_ON_RENAME = {
    ("generator",): "generator",
    ("discriminator",): "discriminator",
    ("loss", "objective"): "objective",
}


def renamed_section(kind: str, section: dict[str, Any], name: Any) -> dict[str, Any]:
    """``section`` (``{name, params}``) for component ``name`` instead: the parameters the new
    component also takes are kept (``ngf``, ``norm``, ...), the others dropped. ``--set
    generator.name=X`` and ``ganzoo ablate --vary generator.name=X,Y`` both do this, so a
    variant differs from its base in the component alone. An unknown ``name`` keeps nothing
    (its validation then names the known ones)."""
    try:
        accepted = {p.name for p in registry.get(kind, name).parameters()}
    except (RegistryError, TypeError):
        accepted = set()
    kept = {k: v for k, v in section.items() if k != "name" and k in accepted}
    return {"name": name, **kept}


def deep_merge(
    base: dict[str, Any], override: dict[str, Any], _path: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``override`` over ``base``: mappings merge key by key, anything else is replaced.

    A generator, discriminator or objective section that changes ``name`` replaces the base
    section whole, since the base's parameters belong to another component.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        path = (*_path, key)
        if isinstance(old, str) and isinstance(value, dict) and path in _REPLACED_ON_RENAME:
            old = {"name": old}
        if isinstance(old, dict) and isinstance(value, dict):
            renamed = value.get("name", old.get("name")) != old.get("name")
            if renamed and path in _REPLACED_ON_RENAME:
                out[key] = copy.deepcopy(value)
            else:
                out[key] = deep_merge(old, value, path)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_tree(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML of ``path`` with its ``extends:`` chain merged in."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise RecipeError(f"{path}: `extends` forms a cycle: {cycle}")
    data = read_yaml(path)
    parents = data.pop("extends", None)
    if parents is None:
        return data
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise RecipeError(f"{path}: `extends` must be a path or a list of paths")
    merged: dict[str, Any] = {}
    for parent in parents:
        base_path = path.parent / parent
        if not base_path.exists():
            raise RecipeError(f"{path}: `extends: {parent}` not found (looked at {base_path})")
        merged = deep_merge(merged, load_tree(base_path, (*_chain, resolved)))
    return deep_merge(merged, data)


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (value parsed as YAML) to a recipe tree."""
    out = copy.deepcopy(tree)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {item!r}: expected dotted.key=value, e.g. train.max_steps=10")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, str) and tuple(parts[: i + 1]) in _REPLACED_ON_RENAME:
                child = node[part] = {"name": child}
            elif not isinstance(child, dict):
                raise RecipeError(f"--set {item!r}: '{'.'.join(parts[: i + 1])}' is not a section")
            node = child
        last = parts[-1]
        renamed = isinstance(node.get("name"), str) and node.get("name") != value
        kind = _REPLACED_ON_RENAME.get(tuple(parts[:-1]))
        if last == "name" and renamed and kind is not None:
            # a new component: keep only the old parameters it also takes
            kept = renamed_section(kind, node, value)
            node.clear()
            node.update(kept)
        node[last] = value
    return out
