"""Tools for the tunnel fault tests: a client that keeps using a URL (as an open viewer
does) and records what each request got, and waiting for a tunnel to come back."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit

from cellucid_desktop.remote.tunnel import Tunnel, TunnelState, TunnelStatus
from tests.helpers import wait_for

OK = (200, 206)
REQUEST_TIMEOUT = 90.0  # longer than any recovery: a request still open then has hung


class Polling:
    """A thread requesting ``url`` every ``every`` seconds until the block ends; each
    outcome is an HTTP status or the name of the exception the request raised."""

    def __init__(self, url: str, headers: dict[str, str] | None = None,
                 every: float = 0.05) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.headers = headers or {}
        self.every = every
        self.outcomes: list[tuple[float, int | str, float]] = []  # (start, outcome, took)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Polling:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(REQUEST_TIMEOUT + 10)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            conn = http.client.HTTPConnection(*self.address, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", self.target, headers=self.headers)
                resp = conn.getresponse()
                resp.read()
                outcome: int | str = resp.status
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
            finally:
                conn.close()
            self.outcomes.append((start, outcome, time.monotonic() - start))
            self._stop.wait(self.every)

    def answered_since(self, moment: float) -> bool:
        return any(start >= moment and outcome in OK for start, outcome, _ in self.outcomes)

    def wait_answered(self, what: str, timeout: float = 60.0) -> None:
        since = time.monotonic()
        wait_for(lambda: self.answered_since(since), timeout, what=what)

    def failures(self) -> set[int | str]:
        return {outcome for _, outcome, _ in self.outcomes if outcome not in OK}

    def longest(self) -> float:
        return max(took for _, _, took in self.outcomes)


def back_after(tunnel: Tunnel, old_pid: int | None, timeout: float = 90.0) -> TunnelStatus:
    """Wait until a new ssh forwards again (or the tunnel failed); its status."""
    def settled() -> TunnelStatus | None:
        status = tunnel.status
        if status.state == TunnelState.FAILED:
            return status
        if status.state == TunnelState.CONNECTED and tunnel.pid not in (None, old_pid):
            return status
        return None

    return wait_for(settled, timeout, interval=0.05, what="the tunnel to come back")
