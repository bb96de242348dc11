"""The app's rotating log file (what the tray's *Show log* opens)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from cellucid_desktop import paths

LOG_NAME = "cellucid-desktop.log"
MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)-7s %(processName)s %(name)s: %(message)s"


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log only its user can read (it names datasets and hosts): each file
    it opens, a new one after rotation or one an older version made 0644, is 0600."""

    def _open(self):  # noqa: ANN202 - the base class's stream
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if os.name == "posix":
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def log_file() -> Path:
    return paths.log_dir() / LOG_NAME


def _close_old_backups(path: Path) -> None:
    """Rotated logs an older version left readable by others become 0600 too."""
    if os.name != "posix":
        return
    for index in range(1, BACKUPS + 1):
        try:
            os.chmod(f"{path}.{index}", 0o600)
        except FileNotFoundError:
            continue


def setup_logging(verbose: bool = False) -> Path:
    """Send the root logger to the rotating file (and to stderr when ``verbose``)."""
    path = log_file()
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(getattr(h, "baseFilename", None) == str(path) for h in root.handlers):
        handler = PrivateRotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        _close_old_backups(path)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(stream)
    return path
