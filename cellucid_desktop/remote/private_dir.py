"""A private folder (mode 0700, ours) with a short path, for this launch's sockets.

The askpass socket and the ssh control sockets live here. Private, because whoever can
connect to a control socket can run commands as the user on the remote host; short,
because a Unix socket path has ~104 bytes (macOS's ``$TMPDIR`` alone is ~50, so on POSIX
the base is ``$XDG_RUNTIME_DIR/cellucid-desktop`` or ``/tmp/cellucid-desktop-UID``).
A base folder that exists but is not ours, or is a symlink, is never used: another user
could have made it to read our sockets; a fresh ``mkdtemp`` folder is used instead.
Each launch gets its own random subfolder, removed when the app exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_launch_dir: Path | None = None


def is_private(path: Path) -> bool:
    """A real folder (not a symlink) owned by us, with no access for group or others."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and info.st_mode & 0o077 == 0)


def _own_base() -> Path | None:
    """The per-user base folder, created 0700 (or tightened) if ours; None if unusable."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/") and len(runtime) < 40:
        base = Path(runtime) / "cellucid-desktop"
    else:
        base = Path("/tmp") / f"cellucid-desktop-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            os.chmod(base, 0o700)
    except OSError:
        return None
    return base if is_private(base) else None


def private_dir() -> Path:
    """This launch's private folder (made on first use, removed at exit)."""
    global _launch_dir
    with _lock:
        if _launch_dir is None or not _launch_dir.is_dir():
            if sys.platform == "win32":  # per-user temp, private by its ACL; no AF_UNIX use
                base = None
            else:
                base = _own_base() or Path(tempfile.mkdtemp(prefix="cellucid-", dir="/tmp"))
            _launch_dir = Path(tempfile.mkdtemp(prefix="", dir=base))
            atexit.register(shutil.rmtree, _launch_dir, True)
        return _launch_dir
