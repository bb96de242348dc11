"""Remote-side servers for tunnel tests, started as real processes on loopback.

"Remote" means reached through sshd; the processes run on this machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from cellucid_desktop.remote.tunnel import die_with_parent
from tests.helpers import wait_for
from tests.server.reference import ReferenceServer, raw_request

VENV_BIN = Path(sys.executable).parent
LOCAL_URL = re.compile(r"^  Local URL:\s+http://([0-9.]+):(\d+)", re.M)


class ServeProcess(ReferenceServer):
    """A server CLI that prints cellucid's banner; ``port`` read from its Local URL (any
    bind address, unlike ReferenceServer, whose stop() it shares)."""

    def __init__(self, argv: list[str]) -> None:  # not super().__init__: it starts cellucid
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)
        self.output = ""
        self.host, self.port = wait_for(self._read_url, timeout=90, what=f"{argv[0]} banner")
        if self.host == "127.0.0.1":  # raw_request reaches 127.0.0.1 only
            wait_for(lambda: raw_request(self.port, "GET", "/_cellucid/health").status == 200,
                     what="the server's health route", interval=0.2)

    def _read_url(self) -> tuple[str, int] | None:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.output}{self.process.stdout.read()}")
        self.output += self.process.stdout.readline()
        match = LOCAL_URL.search(self.output)
        return (match.group(1), int(match.group(2))) if match else None



def cellucid_serve(path: Path, *extra: str, host: str = "127.0.0.1") -> ServeProcess:
    """The real `cellucid serve` 0.9.5 (no web UI: this machine has no internet)."""
    return ServeProcess([str(VENV_BIN / "cellucid"), "serve", str(path), "--no-web-ui",
                         "--no-browser", "--port", "0", "--host", host,
                         "--dataset-id", "remote-data", "--dataset-name", "Remote data",
                         *extra])


def desktop_serve(path: Path) -> ServeProcess:
    """Our own `cellucid-desktop serve`."""
    return ServeProcess([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                         "--no-browser", "--port", "0", "--dataset-id", "remote-data",
                         "--dataset-name", "Remote data"])
