"""The frozen Linux bundle, built once per test session by packaging/build-linux.sh, and
the desktop GUI fixtures (Xvfb, D-Bus, app launcher) reused from tests/desktop."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desktop.conftest import app_env, launch  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600


@pytest.fixture(scope="session")
def frozen_app() -> Iterator[Path]:
    """Path of the bundle's `cellucid-desktop` binary (one-folder build, no tarball).

    Built in its own temp folder, not pytest's: pytest deletes all but the newest three
    basetemp folders of a user, so a concurrent pytest run would remove the bundle while
    it runs (the app then dies with SIGSEGV).
    """
    with tempfile.TemporaryDirectory(prefix="cellucid-bundle-") as out:
        result = subprocess.run([str(ROOT / "packaging" / "build-linux.sh"), "--no-tarball", out],
                                cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                                env={**os.environ, "PYTHON": sys.executable})
        assert result.returncode == 0, \
            f"bundle build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        binary = Path(out) / "dist" / "cellucid-desktop" / "cellucid-desktop"
        assert binary.is_file()
        yield binary
