"""Remote-side servers for tunnel tests, started as real processes on loopback.

"Remote" means reached through sshd; the processes run on this machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
