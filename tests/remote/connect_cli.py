"""`cellucid-desktop connect` run as a user runs it: a real process whose banner is read."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import as_background_job, wait_for

VIEWER_URL = re.compile(r"^  Viewer URL:\s+(\S+)$", re.M)
ROOT = Path(__file__).parents[2]


def connect_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cellucid_desktop", "connect", *args]


def viewer_url(proc: subprocess.Popen) -> str:
    """The URL on the banner's ``Viewer URL:`` line (fails if connect exits first)."""
    seen = ""

    def line() -> str | None:
        nonlocal seen
        if proc.poll() is not None:
            raise AssertionError(f"connect exited {proc.returncode}: {seen}"
                                 f"{proc.stderr.read()}")
        seen += proc.stdout.readline()
        match = VIEWER_URL.search(seen)
        return match.group(1) if match else None

    return wait_for(line, timeout=90, what="the Viewer URL line")


@contextlib.contextmanager
def running_connect(*args: str) -> Iterator[subprocess.Popen]:
    """``connect ARGS`` with its output piped, started as a background job is (SIGINT
    ignored: Ctrl+C must stop it all the same); killed at the end if still running."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(connect_command(*args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                            preexec_fn=as_background_job)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
