"""The command line's front end for ssh prompts: ask on the controlling terminal.

Passed to ``PromptBroker`` by commands that sign in (``connect``). Secrets are read with
``getpass`` (no echo); host keys and other yes/no questions show ssh's own text, which
names the host and the key's fingerprint, and take yes or no (or the fingerprint, as ssh
does). Ctrl+D cancels the sign-in. Ctrl+C stops the command: the prompt runs in the
broker's thread while the signal goes to the main thread, so the terminal's settings are
saved here and restored at exit (getpass would otherwise leave echo off).
"""

from __future__ import annotations

import atexit
import getpass
import sys
import threading
from typing import TextIO

from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.prompt_broker import PromptBroker, PromptRequest
from cellucid_desktop.remote.prompts import PromptKind


class TerminalPrompts:
    """Callable front end: ``broker = PromptBroker(TerminalPrompts())``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._explained: set[tuple[str, str]] = set()  # (connection, reason) said once
        self._saved = _save_terminal()
        if self._saved is not None:
            atexit.register(_restore_terminal, self._saved)

    def __call__(self, request: PromptRequest) -> str | None:
        with self._lock, _Terminal() as tty:
            prompt = request.prompt
            if request.reason and (request.connection, request.reason) not in self._explained:
                self._explained.add((request.connection, request.reason))
                tty.write(f"{request.reason}\n")
            try:
                if prompt.kind is PromptKind.NOTICE:
                    tty.write(prompt.text.rstrip() + "\n")
                    return ""
                if prompt.kind is PromptKind.SECRET:
                    return getpass.getpass(prompt.text)
                if prompt.kind is PromptKind.TEXT:
                    return _read_line(tty, prompt.text)
                return _yes_no(tty, prompt.text, prompt.fingerprint)
            except EOFError:
                tty.write("\n")
                return None
            finally:
                tty.flush()


def terminal_pool() -> MasterPool:
    """A master pool whose sign-in prompts are asked on this terminal (close it with
    ``pool.close_all()`` and ``pool.broker.close()``)."""
    return MasterPool(PromptBroker(TerminalPrompts()).start())


def _yes_no(tty: TextIO, text: str, fingerprint: str | None) -> str | None:
    question = text
    while True:
        answer = _read_line(tty, question).strip()
        if answer.lower() in ("yes", "y") or (fingerprint and answer == fingerprint):
            return "yes"
        if answer.lower() in ("no", "n"):
            return "no"
        question = "Please type yes or no: "


def _read_line(tty: TextIO, text: str) -> str:
    tty.write(text)
    tty.flush()
    line = tty.readline()
    if not line:
        raise EOFError
    return line.rstrip("\r\n")


class _Terminal:
    """The controlling terminal for reading and writing (the console on Windows)."""

    def __enter__(self) -> TextIO:
        try:
            self._file: TextIO | None = open("/dev/tty", "r+", encoding="utf-8",
                                             errors="replace")
            return self._file
        except OSError:
            self._file = None
            return _Console()

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


class _Console:
    """stdin/stderr where there is no /dev/tty (Windows)."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def readline(self) -> str:
        return sys.stdin.readline()


def _save_terminal() -> object | None:
    try:
        import termios
        with open("/dev/tty") as tty:
            return (tty.name, termios.tcgetattr(tty))
    except (ImportError, OSError):
        return None


def _restore_terminal(saved: tuple) -> None:
    import termios
    path, attributes = saved
    try:
        with open(path) as tty:
            termios.tcsetattr(tty, termios.TCSANOW, attributes)
    except (OSError, termios.error):
        pass
