"""The built-in demo dataset, generated deterministically into the user cache on first use."""

from __future__ import annotations

from pathlib import Path

from cellucid_desktop.data.synthetic import make_synthetic
from cellucid_desktop.paths import cache_dir

DEMO_VERSION = 1
DEMO_CELLS = 20_000
DEMO_GENES = 2_000


def demo_path() -> Path:
    """The demo `.h5ad`, written the first time it is asked for (about a second)."""
    path = cache_dir() / "demo" / f"cellucid-demo-v{DEMO_VERSION}.h5ad"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_synthetic(path, DEMO_CELLS, DEMO_GENES, genes_per_cell=250, seed=2026,
                       dataset_id="cellucid-demo", name="Cellucid demo (20k PBMC-like cells)")
    return path
