"""Loaded at interpreter start (via PYTHONPATH) by the portability run: makes this POSIX
Python look like Windows' for the calls our code must not depend on, so the portable
fallbacks are exercised here (tests/portability/test_without_posix_calls.py).

Hidden: ``os.sendfile``, ``os.preadv``, ``os.pread``, ``os.pwrite``, ``os.killpg`` and
``signal.SIGKILL`` (none exists on Windows; ``preadv`` also not on macOS < 11).
``subprocess.Popen.kill`` then does what it does on Windows: terminate.
"""

import os
import signal
import subprocess

if os.environ.get("CELLUCID_HIDE_POSIX") == "1":
    for _name in ("sendfile", "preadv", "pread", "pwrite", "killpg"):
        if hasattr(os, _name):
            delattr(os, _name)
    if hasattr(signal, "SIGKILL"):
        delattr(signal, "SIGKILL")
    subprocess.Popen.kill = subprocess.Popen.terminate  # as on Windows
