"""Remote-side servers for tunnel tests, started as real processes on loopback.

"Remote" means reached through sshd; the processes run on this machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from cellucid_desktop.remote.child_process import die_with_parent
from tests.server.reference import ServeProcess

VENV_BIN = Path(sys.executable).parent


def cellucid_serve(path: Path, *extra: str, host: str = "127.0.0.1") -> ServeProcess:
    """The real `cellucid serve` 0.9.5 (no web UI: this machine has no internet)."""
    return ServeProcess([str(VENV_BIN / "cellucid"), "serve", str(path), "--no-web-ui",
                         "--no-browser", "--port", "0", "--host", host,
                         "--dataset-id", "remote-data", "--dataset-name", "Remote data",
                         *extra])


def desktop_serve(path: Path, *extra: str) -> ServeProcess:
    """Our own `cellucid-desktop serve` (with its access token: ``.token``)."""
    return ServeProcess([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                         "--no-browser", "--port", "0", "--dataset-id", "remote-data",
                         "--dataset-name", "Remote data", *extra])


def token_file(folder: Path, token: str) -> Path:
    """``token`` in a 0600 file, as a user keeps one for --token-file."""
    path = folder / "remote.token"
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return path


class SocketServe:
    """`cellucid-desktop serve --socket` in a private runtime folder: ``socket`` and
    ``token`` come from its banner."""

    def __init__(self, path: Path, runtime: Path) -> None:
        runtime.mkdir(mode=0o700, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_RUNTIME_DIR": str(runtime)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cellucid_desktop", "serve", str(path), "--socket",
             "--no-browser", "--dataset-id", "remote-data", "--dataset-name", "Remote data"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        self.output = ""
        while "Viewer URL:" not in self.output:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"serve --socket exited: {self.output}")
            self.output += line
        self.socket = re.search(r"^  Socket:\s+(\S+)$", self.output, re.M).group(1)
        self.token = re.search(r"[?&]token=([A-Za-z0-9._~-]+)", self.output).group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(15)
        self.process.stdout.close()
