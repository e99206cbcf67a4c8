"""Spawned workers import the caller's script again: refuse, in one line, a script that would
start the ablation once more in every worker (where multiprocessing fails with a traceback in
each worker and ``BrokenProcessPool`` for every run)."""

from __future__ import annotations

import ast
import multiprocessing as mp
import sys
from pathlib import Path

from ganzoo.errors import GanzooError

ADVICE = 'put the code that starts it under `if __name__ == "__main__":`'


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either order of the comparison)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, *test.comparators]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]


def check_spawn_safe_main() -> None:
    """A one-line GanzooError when spawned workers would start the ablation again: called in
    a worker that is still importing the caller's script, or from a script (``python
    script.py`` / ``python -m module``) with no ``if __name__ == "__main__":`` block."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(mp.current_process(), "_inheriting", False):
        raise GanzooError(
            f"a spawned ablation worker imported {path or 'your script'} again and reached the "
            f"code that starts the ablation; {ADVICE}"
        )
    spec = getattr(main, "__spec__", None)
    if path is None or (spec is not None and spec.name.rpartition(".")[2] == "__main__"):
        return  # interactive, python -c, or a package's __main__ (spawn does not re-import it)
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return
    if not any(_is_main_guard(node) for node in tree.body):
        raise GanzooError(
            f"{path}: the local launcher runs each ablation run in a spawned process, which "
            f"imports this script again and would start the ablation once more; {ADVICE}"
        )
