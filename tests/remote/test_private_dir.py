"""The folder for this launch's sockets is private, short, and never one another user made."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.paths import is_private, socket_base
from cellucid_desktop.remote.private_dir import private_dir

NOBODY = 65534


@pytest.fixture()
def runtime_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short XDG_RUNTIME_DIR (pytest's temp paths are too long to be used as one)."""
    path = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path)


def test_the_launch_folder_is_ours_mode_0700_and_short() -> None:
    folder = private_dir()
    info = folder.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (os.getuid(), 0o700)
    assert is_private(folder.parent)
    assert len(str(folder)) <= 50
    assert private_dir() == folder  # one per launch


def test_a_base_folder_another_user_made_is_not_used(runtime_dir: Path) -> None:
    trap = runtime_dir / "cellucid-desktop"
    trap.mkdir()
    trap.chmod(0o777)
    os.chown(trap, NOBODY, NOBODY)
    assert socket_base() is None
    assert stat.S_IMODE(trap.stat().st_mode) == 0o777  # left alone


def test_a_symlinked_base_folder_is_not_used(runtime_dir: Path) -> None:
    elsewhere = runtime_dir / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (runtime_dir / "cellucid-desktop").symlink_to(elsewhere)
    assert socket_base() is None


def test_our_own_base_folder_with_loose_permissions_is_tightened(runtime_dir: Path) -> None:
    base = runtime_dir / "cellucid-desktop"
    base.mkdir(mode=0o755)
    base.chmod(0o755)
    assert socket_base() == base
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
