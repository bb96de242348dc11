"""One app per user: a lock file names the running app; later launches talk to it.

The lock (``instance.json`` in the state dir, mode 0600, owned by this user) holds the
running app's pid, its server port and a per-launch secret. A later launch never sends
that secret: both sides prove they know it, with a challenge over the control routes
(``/_desktop/control/*``, names in ``desktop/ipc.py``):

1. ``POST hello {"nonce": c}``: the server answers ``{"nonce": s, "proof":
   HMAC(secret, "server", c, s)}``. A listener that does not know the secret (a stale
   lock pointing at a port someone else now uses) cannot answer, and the launch treats
   the lock as stale instead of handing it file paths.
2. ``POST <command>`` with ``X-Cellucid-Nonce: s`` and ``X-Cellucid-Proof:
   HMAC(secret, "client", s, c, command, sha256(body))``: the server checks it and
   forgets ``s`` (each server nonce serves one command, for 30 s).

No pywebview and no command-line output here: the ``open``, ``quit`` and ``connect``
commands use this module headless and print what it returns or raises.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cellucid_desktop import paths
from cellucid_desktop.desktop.ipc import (CONTROL_PREFIX, NONCE_HEADER, PROOF_HEADER,
                                          Control)
from cellucid_desktop.http_client import Client, Endpoint

log = logging.getLogger(__name__)

LOCK_NAME = "instance.json"
CHALLENGE_TTL = 30.0  # seconds a server nonce stays usable
WRITE_GRACE = 2.0  # seconds a just-created, still empty lock is given to be written


class InstanceError(Exception):
    """Talking to the running app failed; ``str()`` is one sentence for the user."""


class AlreadyRunning(Exception):
    """Another launch of this user claimed the lock first (DesktopApp.run raises it)."""


class NotOurApp(InstanceError):
    """Whatever answers on the recorded port does not know the secret."""


def proof(secret: str, role: str, *parts: str) -> str:
    """HMAC-SHA256 of ``role`` and ``parts`` under the secret (hex)."""
    message = "\0".join((role, *parts)).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def client_proof(secret: str, server_nonce: str, client_nonce: str, command: str,
                 body: bytes) -> str:
    return proof(secret, "client", server_nonce, client_nonce, command,
                 hashlib.sha256(body).hexdigest())


class Challenges:
    """The server side: issues nonces in ``hello`` and checks each command's proof."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._open: dict[str, tuple[str, float]] = {}  # server nonce -> client nonce, expiry
        self._lock = threading.Lock()

    def hello(self, client_nonce: str) -> dict[str, str]:
        server_nonce = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            self._open = {n: v for n, v in self._open.items() if v[1] > now}
            self._open[server_nonce] = (client_nonce, now + CHALLENGE_TTL)
        return {"nonce": server_nonce,
                "proof": proof(self.secret, "server", client_nonce, server_nonce)}

    def verify(self, server_nonce: str, supplied: str, command: str, body: bytes) -> bool:
        """Whether ``supplied`` proves the secret for this command; the nonce is spent."""
        with self._lock:
            entry = self._open.pop(server_nonce, None)
        if entry is None or entry[1] < time.monotonic():
            return False
        expected = client_proof(self.secret, server_nonce, entry[0], command, body)
        return hmac.compare_digest(supplied.encode(), expected.encode())


@dataclass(frozen=True)
class Instance:
    pid: int
    port: int
    secret: str

    def call(self, command: str, payload: dict[str, Any] | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        """Run a control command in the running app, after it proved it knows the secret.

        Raises NotOurApp if the listener cannot prove it, OSError if nothing answers.
        """
        command = str(command)
        body = json.dumps(payload or {}).encode()
        mine = secrets.token_hex(16)
        with Client(Endpoint(port=self.port), timeout=timeout, maxsize=1) as client:
            hello = client.post_json(f"{CONTROL_PREFIX}/{Control.HELLO}",
                                     {"nonce": mine}).json() or {}
            theirs = str(hello.get("nonce", ""))
            expected = proof(self.secret, "server", mine, theirs)
            if not theirs or not hmac.compare_digest(str(hello.get("proof", "")).encode(),
                                                     expected.encode()):
                raise NotOurApp(f"The program on port {self.port} is not this user's "
                                "Cellucid Desktop.")
            reply = client.request("POST", f"{CONTROL_PREFIX}/{command}", body=body, headers={
                "Content-Type": "application/json", NONCE_HEADER: theirs,
                PROOF_HEADER: client_proof(self.secret, theirs, mine, command, body)})
        if reply.status != 200:
            raise InstanceError(f"The running Cellucid Desktop refused {command!r} "
                                f"(HTTP {reply.status}).")
        return json.loads(reply.body or b"{}")


def lock_path() -> Path:
    return paths.state_dir() / LOCK_NAME


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def pid_alive(pid: int) -> bool:
    """Cheap first check. On Windows ``os.kill(pid, 0)`` would *terminate* the process,
    so there the challenge (which proves the secret) decides alone."""
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
    """The lock's content, or None if it is missing, unreadable, damaged, or not
    private to this user (another owner, or readable by others: not to be trusted)."""
    path = path or lock_path()
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not _private_to_me(os.fstat(handle.fileno())):
            log.warning("Ignoring %s: it is not a file only this user can read", path)
            return None
        try:
            raw = json.loads(handle.read().decode("utf-8"))
            return Instance(int(raw["pid"]), int(raw["port"]), str(raw["secret"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _private_to_me(status: os.stat_result) -> bool:
    if os.name != "posix":
        return True  # the per-user profile folder's ACL protects it there
    return (stat.S_ISREG(status.st_mode) and status.st_uid == os.getuid()
            and not status.st_mode & 0o077)


def answers(instance: Instance) -> bool:
    """Whether the app named by the lock is alive and proves it knows the secret."""
    if not pid_alive(instance.pid):
        return False
    try:
        reply = instance.call(Control.PING, timeout=3.0)
    except (OSError, ValueError, InstanceError):
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


def hand_over(files: list[str], demo: bool,
              running: Instance | None = None) -> list[dict[str, Any]]:
    """Hand files (or just "show yourself") to the running app (``running``, else the one
    :func:`find_running` finds). Returns one result per file (``ok``, ``error``,
    ``path``); raises InstanceError."""
    running = running or find_running()
    if running is None:
        raise InstanceError("Cellucid Desktop seems to be starting elsewhere; try again in "
                            "a moment.")
    # absolute, links left for the registry to resolve (a link loop: one sentence there)
    absolute = [os.path.abspath(os.path.expanduser(f)) for f in files]
    try:
        reply = running.call(Control.OPEN, {"paths": absolute, "demo": demo}, timeout=120)
    except OSError as exc:
        raise InstanceError(f"The running Cellucid Desktop did not answer ({exc}); quit it "
                            "from the tray and start again.") from None
    return [r for r in reply.get("results", []) if isinstance(r, dict)]
