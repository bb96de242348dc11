"""A real server (waitress) with several datasets, and headless Chromium (Playwright)
with software WebGL2 (SwiftShader through ANGLE), shared by the viewer tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.viewer.analysis_files import write_pbmc_like
from tests.viewer.odd_files import write_no_obs_3d_only, write_tsne_text_many_categories
# The desktop tests' private Xvfb and D-Bus (started and stopped by PID), for the WebKit tests.

VIEWPORT = {"width": 1100, "height": 720}


@pytest.fixture(scope="session")
def viewer_datasets(small_h5ad: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("viewer-data")
    broken = folder / "broken.h5ad"
    shutil.copy(small_h5ad, broken)
    return {
        "small-test": small_h5ad,
        "no-obs-3d": write_no_obs_3d_only(folder / "no-obs-3d.h5ad"),
        "tsne-text": write_tsne_text_many_categories(folder / "tsne-text.h5ad"),
        "pbmc": write_pbmc_like(folder / "pbmc.h5ad"),
        "broken": broken,
    }


@pytest.fixture(scope="session")
def viewer_server(viewer_datasets: dict[str, Path]) -> Iterator[ServerThread]:
    registry = DatasetRegistry()
    for dataset_id, path in viewer_datasets.items():
        registry.add(path, dataset_id=dataset_id)
    server = ServerThread(registry, token=None).start()  # the token flow: test_access.py
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light", device_scale_factor=1,
                                  accept_downloads=True)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda err: errors.append(str(err)))
    yield new_page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
