"""Small helpers for tests (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GiveUp(AssertionError):
    """Raised by a check when waiting longer cannot help (e.g. the process is gone)."""


def wait_for(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.1,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value; fail loudly on timeout, or at
    once when the check raises GiveUp."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except GiveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a process this test run started (by its PID), killing it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def as_background_job() -> None:
    """``preexec_fn``: start with SIGINT ignored, as a shell starts ``cmd &`` in a script
    (and as some CI runners start everything). Ctrl+C must still stop our commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
