"""Files that name datasets or hold their data are the user's alone: the app's folders
are 0700 and its log 0600, also when an older version left them open."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from cellucid_desktop import logs, paths


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("folder", [paths.config_dir, paths.cache_dir, paths.log_dir,
                                    paths.state_dir, paths.socket_dir])
def test_new_folders_are_private(folder) -> None:
    assert mode(folder()) == 0o700


def test_folders_an_older_version_left_open_are_closed(isolated_user_dirs: Path) -> None:
    old = isolated_user_dirs / "xdg_config_home" / "cellucid-desktop"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    assert paths.config_dir() == old and mode(old) == 0o700


def test_a_folder_owned_by_someone_else_is_refused(isolated_user_dirs: Path) -> None:
    foreign = isolated_user_dirs / "xdg_state_home" / "cellucid-desktop"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    with pytest.raises(paths.NotPrivateError, match="not a folder of this user's"):
        paths.state_dir()


def test_the_log_is_private_new_old_and_rotated() -> None:
    path = logs.log_file()
    path.write_text("written by an older version\n")
    path.chmod(0o644)
    backup = Path(f"{path}.1")
    backup.write_text("old backup\n")
    backup.chmod(0o644)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logs.setup_logging()
        assert mode(path) == 0o600 and mode(backup) == 0o600
        handler = next(h for h in root.handlers if h not in before)
        handler.maxBytes = 200
        for i in range(20):
            logging.getLogger("test").warning("line %d of a log that rotates", i)
        assert Path(f"{path}.2").exists()
        for rotated in (path, Path(f"{path}.1"), Path(f"{path}.2")):
            assert mode(rotated) == 0o600, rotated
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
