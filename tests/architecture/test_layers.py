"""Imports point one way: cli -> desktop -> remote -> server -> data, with the top-level
helpers (settings, paths, logs, fileio, atomic_files, hosts, webapp_source) as leaves
that import no layer. Read from the source, so a new import that breaks it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cellucid_desktop"
ORDER = ["data", "server", "remote", "desktop", "cli"]  # each may import those before it
LEAVES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def imported_packages(path: Path) -> set[str]:
    """The cellucid_desktop sub-packages or modules a file imports (at any depth)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "cellucid_desktop" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_helpers_import_no_layer(leaf: str) -> None:
    assert not imported_packages(PACKAGE / f"{leaf}.py") & set(ORDER)


@pytest.mark.parametrize("layer", ORDER)
def test_layers_import_only_the_layers_below(layer: str) -> None:
    above = set(ORDER[ORDER.index(layer) + 1:])
    for path in (PACKAGE / layer).rglob("*.py"):
        assert not imported_packages(path) & above, path.relative_to(PACKAGE)
