"""Where the app keeps its files, per platform (platformdirs), made on first use.

On Linux these follow XDG_CONFIG_HOME / XDG_CACHE_HOME / XDG_STATE_HOME, which is also
how tests give each run its own folders. Every folder is private (0700 on POSIX, also
when an older version made it 0755): they name datasets (recent files, saved
connections, the log) or hold their data (gene indexes, remote reads).
"""

from __future__ import annotations

import os
import stat
import tempfile
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


def is_private(path: Path) -> bool:
    """A real folder (not a symlink) owned by us, with no access for group or others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and info.st_mode & 0o077 == 0)


def socket_base() -> Path | None:
    """The per-user folder for Unix sockets, created 0700 (or tightened) if ours; None
    if unusable.

    Short, because a socket path has ~104 bytes (macOS's ``$TMPDIR`` alone is ~50):
    ``$XDG_RUNTIME_DIR/cellucid-desktop`` when that is short, else
    ``/tmp/cellucid-desktop-UID``. One that exists but is not ours, or is a symlink, is
    never used: another user could have made it to reach our sockets.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/") and len(runtime) < 40:
        base = Path(runtime) / APP_NAME
    else:
        base = Path("/tmp") / f"{APP_NAME}-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            os.chmod(base, 0o700)
    except OSError:
        return None
    return base if is_private(base) else None


def socket_dir() -> Path:
    """Where our Unix sockets go (POSIX): ``socket_base()``, else a fresh private
    ``mkdtemp`` folder."""
    return socket_base() or Path(tempfile.mkdtemp(prefix="cellucid-", dir="/tmp"))


def _ensure(path: Path) -> Path:
    return private_dir(path)


class NotPrivateError(PermissionError):
    """A folder that must be private belongs to someone else; ``str()`` says so."""


def private_dir(path: Path) -> Path:
    """``path`` made if missing, owned by this user and entered by no one else (0700).

    A folder of ours that is open to others is closed (chmod 0700); one owned by
    another user raises NotPrivateError: whoever owns it can read what we put there.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name != "posix":
        return path  # per-user profile folders; their ACLs keep other users out
    status = path.stat()
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid():
        raise NotPrivateError(f"{path} is not a folder of this user's; remove it or choose "
                              "another place")
    if status.st_mode & 0o077:
        path.chmod(0o700)
    return path
