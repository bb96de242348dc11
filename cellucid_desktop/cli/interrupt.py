"""Ctrl+C for the commands that run until stopped (`serve`, `connect --no-window`).

Two ways it used to do nothing (issue 9.3):

* A process started with SIGINT ignored keeps it ignored: a shell starts background
  jobs so (`cellucid-desktop serve data.h5ad &` in a script, many CI runners), and
  Python then installs no KeyboardInterrupt handler at all. ``honour_ctrl_c`` installs
  it regardless, so Ctrl+C or ``kill -INT`` stops these commands as documented.
* On Windows an untimed lock wait (``threading.Event().wait()``) is not interrupted by
  Ctrl+C; ``wait_for_ctrl_c`` waits in short slices instead.
"""

from __future__ import annotations

import signal
import threading

SLICE = 0.5  # seconds between looks for a pending Ctrl+C


def honour_ctrl_c() -> None:
    """Make SIGINT raise KeyboardInterrupt in the main thread, even if it was ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_for_ctrl_c() -> None:
    """Block until Ctrl+C, which raises KeyboardInterrupt here."""
    never = threading.Event()
    while not never.wait(SLICE):
        pass
