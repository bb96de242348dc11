"""One app per user: a lock file names the running app; later launches talk to it.

The lock (``instance.json`` in the state dir, mode 0600) holds the running app's pid,
its server port and a per-launch secret. A later launch proves the app is really there
by POSTing the secret to its ``/_desktop/control/ping`` route; if the pid is gone or
the port does not answer with the same secret (a crash left the file behind, or the port
was reused), the lock is stale and the new launch takes over.

No pywebview here: the ``open`` and ``quit`` commands use this module headless.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cellucid_desktop import paths

log = logging.getLogger(__name__)

LOCK_NAME = "instance.json"
TOKEN_HEADER = "X-Cellucid-Token"
CONTROL_PREFIX = "/_desktop/control"
WRITE_GRACE = 2.0  # seconds a just-created, still empty lock is given to be written


@dataclass(frozen=True)
class Instance:
    pid: int
    port: int
    secret: str

    def call(self, command: str, payload: dict[str, Any] | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        """POST a control command to the running app; raises OSError if it does not answer."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{CONTROL_PREFIX}/{command}",
            data=json.dumps(payload or {}).encode(), method="POST",
            headers={"Content-Type": "application/json", TOKEN_HEADER: self.secret})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"{}")


def lock_path() -> Path:
    return paths.state_dir() / LOCK_NAME


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def pid_alive(pid: int) -> bool:
    """Cheap first check. On Windows ``os.kill(pid, 0)`` would *terminate* the process,
    so there the ping (which proves the secret) decides alone."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def read_lock(path: Path | None = None) -> Instance | None:
    try:
        raw = json.loads((path or lock_path()).read_text(encoding="utf-8"))
        return Instance(int(raw["pid"]), int(raw["port"]), str(raw["secret"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answers(instance: Instance) -> bool:
    """Whether the app named by the lock is alive and knows the secret."""
    if not pid_alive(instance.pid):
        return False
    try:
        reply = instance.call("ping", timeout=3.0)
    except (OSError, ValueError):
        return False
    return reply.get("app") == "cellucid-desktop" and reply.get("pid") == instance.pid


def find_running() -> Instance | None:
    """The running app of this user, or None (a stale lock is left for ``claim``)."""
    instance = read_lock()
    return instance if instance is not None and answers(instance) else None


def claim(port: int, secret: str) -> Instance | None:
    """Write our lock; returns None if another live app holds it (it won a race)."""
    me = Instance(os.getpid(), port, secret)
    path = lock_path()
    for _attempt in range(20):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            other = read_lock(path)
            if other is not None and answers(other):
                return None
            if other is None and _younger_than(path, WRITE_GRACE):
                time.sleep(0.2)  # another launch is writing it right now
                continue
            log.info("Taking over a stale instance lock (%s)", other)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(me), fh)
        return me
    raise OSError(f"Could not create the instance lock {path}")


def _younger_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime < seconds
    except OSError:
        return False


def release(me: Instance) -> None:
    """Remove the lock if it is still ours."""
    if read_lock() == me:
        lock_path().unlink(missing_ok=True)


def forward_to_running(files: list[str], demo: bool, running: Instance | None = None) -> int:
    """Hand files (or just "show yourself") to the running app (``running``, else the one
    :func:`find_running` finds); exit code for the CLI."""
    from cellucid_desktop.cli.output import error

    running = running or find_running()
    if running is None:
        return error("Cellucid Desktop seems to be starting elsewhere; try again in a moment.")
    # absolute, links left for the registry to resolve (a link loop: one sentence there)
    absolute = [os.path.abspath(os.path.expanduser(f)) for f in files]
    try:
        reply = running.call("open", {"paths": absolute, "demo": demo}, timeout=120)
    except OSError as exc:
        return error(f"The running Cellucid Desktop did not answer ({exc}); "
                     "quit it from the tray and start again.")
    failed = [r for r in reply.get("results", []) if not r.get("ok")]
    for result in failed:
        error(result.get("error") or f"Could not open {result.get('path')}")
    print("Handed over to the running Cellucid Desktop.", flush=True)
    return 1 if failed and len(failed) == len(reply.get("results", [])) else 0
