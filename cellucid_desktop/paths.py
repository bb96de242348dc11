"""Where the app keeps its files, per platform (platformdirs), made on first use.

On Linux these follow XDG_CONFIG_HOME / XDG_CACHE_HOME / XDG_STATE_HOME, which is also
how tests give each run its own folders.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "cellucid-desktop"


def _dirs() -> platformdirs.PlatformDirs:
    return platformdirs.PlatformDirs(APP_NAME, appauthor=False)


def config_dir() -> Path:
    """Settings, recent files, saved connections."""
    return _ensure(_dirs().user_config_path)


def cache_dir() -> Path:
    """Rebuildable files: the demo dataset, gene indexes, the web app build."""
    return _ensure(_dirs().user_cache_path)


def data_dir() -> Path:
    """What the user made and cannot rebuild: saved selections of read-only datasets."""
    return _ensure(_dirs().user_data_path)


def log_dir() -> Path:
    """The rotating log file the tray's *Show log* opens."""
    return _ensure(_dirs().user_log_path)


def state_dir() -> Path:
    """Run-time state: the single-instance lock."""
    return _ensure(_dirs().user_state_path)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
