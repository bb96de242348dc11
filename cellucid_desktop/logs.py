"""The app's rotating log file (what the tray's *Show log* opens), and log lines on a
terminal that no file or dataset can tamper with."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import unicodedata
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


def terminal_safe(text: str, keep: str = "") -> str:
    """``text`` with every control and format character (escape sequences, bidi
    overrides, zero-width marks) written as a visible escape such as ``\\x1b``, so a
    file name or an obs key cannot move the cursor, recolour or hide what a terminal
    shows. Characters in ``keep`` (e.g. a newline) pass as they are."""
    if text.isprintable():
        return text
    return "".join(ch if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
                   else ascii(ch)[1:-1] for ch in text)


class TerminalFormatter(logging.Formatter):
    """One safe line per record on a terminal: an exception shows as its type and
    message, not a traceback (the log file, where there is one, keeps tracebacks)."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = terminal_safe(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += terminal_safe(f" ({type(error).__name__}: {error})")
        return f"{record.levelname}: {line}"


def log_to_terminal(level: int = logging.WARNING) -> None:
    """Show warnings and errors on stderr as safe one-line messages (headless commands)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TerminalFormatter())
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)
