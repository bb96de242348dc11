"""Where `serve --socket` puts its Unix socket, and whether that place is private.

A TCP port on 127.0.0.1 is open to every user of a shared machine; a Unix socket is
reachable only by those who can enter its folder and write to it. So the socket is
created 0600 (server/runner.py) in a folder only this user can enter: by default the
app's socket folder (``paths.socket_dir()``: ``$XDG_RUNTIME_DIR/cellucid-desktop``, or
``/tmp/cellucid-desktop-UID``, never one another user made), or the folder of the path
the user names, which must already be private.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import stat
from pathlib import Path

from cellucid_desktop import paths

# sun_path is 108 bytes on Linux and 104 on macOS, the terminating NUL included.
MAX_PATH_BYTES = 103


class SocketPathError(ValueError):
    """The socket cannot go there; ``str()`` says why and what to do."""


def supported() -> bool:
    return hasattr(socket, "AF_UNIX") and os.name == "posix"


def default_socket_path() -> Path:
    """A new socket name in the user's private socket folder."""
    return paths.socket_dir() / f"serve-{secrets.token_hex(4)}.sock"


def check_socket_path(requested: str | None) -> Path:
    """The socket path to serve on: ``requested`` (absolute-ised) or a default.

    Refuses a folder other users can enter, a path too long for a socket, and a path
    where something other than a stale socket exists or a live server answers.
    """
    if not supported():
        raise SocketPathError("Unix sockets are not available on this system; use --port")
    path = Path(requested).expanduser().absolute() if requested else default_socket_path()
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise SocketPathError(f"the socket path {path} is too long for a Unix socket "
                              f"(at most {MAX_PATH_BYTES} bytes); choose a shorter one")
    folder = path.parent
    try:
        status = folder.stat()
    except OSError as exc:
        raise SocketPathError(f"cannot use the folder {folder}: {exc.strerror}") from None
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise SocketPathError(
            f"other users can enter {folder} (or it is not yours), so they could reach "
            f"the socket; use a folder only you can enter (mkdir -m 700 DIR), or leave "
            f"out PATH to use the app's private socket folder")
    _refuse_live_or_foreign(path)
    return path


def _refuse_live_or_foreign(path: Path) -> None:
    try:
        status = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(status.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket; choose another path")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return  # a socket a crashed server left behind: waitress replaces it
    raise SocketPathError(f"a server already listens on {path}; stop it or choose another "
                          "path")


def forward_command(socket_path: Path, local_port: int = 8765) -> str:
    """The line a laptop runs to reach the socket on 127.0.0.1:``local_port``."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME")
    host = socket.getfqdn() or socket.gethostname()
    target = f"{user}@{host}" if user else host
    return shlex.join(["ssh", "-N", "-L", f"127.0.0.1:{local_port}:{socket_path}", target])
