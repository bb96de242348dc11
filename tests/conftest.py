"""Fixtures every test area shares: isolated user folders, small datasets, free ports."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from cellucid_desktop.data.synthetic import make_synthetic
from tests.formats.stores import Case, build_all
from tests.helpers import stop_process, wait_for
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
def format_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Zarr, MuData and loom datasets in several shapes, written by their own libraries
    (tests/formats/stores.py), each with the reference its library reads back."""
    return build_all(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium (software WebGL2) for the whole run: Playwright's sync API
    allows one driver per thread, so every test area shares this one."""
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def xserver() -> Iterator[str]:
    """A private Xvfb (1280x800x24) on a display number it picks itself (-displayfd).

    Key autorepeat off (``-r``): a typed key is a press then a release, and on a busy
    machine xdotool can be descheduled between the two for longer than the repeat delay
    (660 ms); the server then repeats the key, and a typed path gains a letter."""
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp", "-r"], stdout=subprocess.PIPE, text=True)
    number = proc.stdout.readline().strip()
    assert number.isdigit(), "Xvfb did not start (is the xvfb package installed?)"
    yield f":{number}"
    stop_process(proc)


@pytest.fixture(scope="session")
def session_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private D-Bus session bus, so GLib never autolaunches one that outlives the tests."""
    address = f"unix:path={tmp_path_factory.mktemp('dbus') / 'bus'}"
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address={address}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(address.removeprefix("unix:path=")).exists(), 20, what="dbus-daemon")
    yield address
    stop_process(proc)
