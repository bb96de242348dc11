"""Fixtures every test area shares: isolated user folders, small datasets, free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from cellucid_desktop.data.synthetic import make_synthetic
from tests.viewer.browser import launch_chromium


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config/cache/state/data folders at a fresh temp tree, so no test touches the
    real user's settings and every test starts with an empty recent list and cache."""
    root = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        (root / var.lower()).mkdir()
        monkeypatch.setenv(var, str(root / var.lower()))
    return root


@pytest.fixture(scope="session")
def small_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3,000-cell x 500-gene synthetic dataset (CSR X, 2D and 3D UMAP, categories)."""
    path = tmp_path_factory.mktemp("data") / "small.h5ad"
    return make_synthetic(path, 3000, 500, genes_per_cell=60, seed=1,
                          dataset_id="small-test", name="Small test")



@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium (software WebGL2) for the whole run: Playwright's sync API
    allows one driver per thread, so every test area shares this one."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
