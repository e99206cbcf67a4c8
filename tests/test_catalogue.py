"""docs/components.md is generated from the registry and must be up to date."""

from __future__ import annotations

from pathlib import Path

from ganzoo import registry
from ganzoo.catalogue import components_markdown, is_shipped

DOC = Path(__file__).resolve().parents[1] / "docs" / "components.md"


def test_components_doc_is_up_to_date() -> None:
    assert DOC.read_text() == components_markdown(), (
        "docs/components.md is stale: run `ganzoo docs components --out docs/components.md`"
    )


def test_every_builtin_component_is_documented_with_a_summary() -> None:
    text = components_markdown()
    for kind in registry.KINDS:
        for entry in registry.entries(kind):
            if not is_shipped(entry):
                continue
            assert f"### `{entry.name}`" in text
            assert entry.summary(), f"{kind} {entry.name} has no docstring summary"
