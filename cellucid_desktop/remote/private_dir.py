"""A private folder (mode 0700, ours) with a short path, for this launch's sockets.

The askpass socket and the ssh control sockets live here. Private, because whoever can
connect to a control socket can run commands as the user on the remote host; short,
because a Unix socket path has ~104 bytes: the base is ``paths.socket_dir()`` (the same
one `serve --socket` uses), which never takes a folder another user made. Each launch
gets its own random subfolder, removed when the app exits.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from cellucid_desktop.paths import socket_dir

_lock = threading.Lock()
_launch_dir: Path | None = None


def private_dir() -> Path:
    """This launch's private folder (made on first use, removed at exit)."""
    global _launch_dir
    with _lock:
        if _launch_dir is None or not _launch_dir.is_dir():
            if sys.platform == "win32":  # per-user temp, private by its ACL; no AF_UNIX use
                base = None
            else:
                base = socket_dir()
            _launch_dir = Path(tempfile.mkdtemp(prefix="", dir=base))
            atexit.register(shutil.rmtree, _launch_dir, True)
        return _launch_dir
