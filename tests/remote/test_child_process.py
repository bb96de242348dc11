"""Helper processes (ssh) that cannot outlive the app, on every OS (child_process.py).

The POSIX paths run here, and with killpg/SIGKILL hidden in the portability run. The
Windows Job object cannot run on this machine; its ctypes layout is checked against the
sizes the Windows SDK gives on 64-bit Windows, so a wrong field is caught here."""

from __future__ import annotations

import ctypes
import subprocess
import sys

from cellucid_desktop.remote.child_process import (JobBasicLimits, JobExtendedLimits, spawn,
                                                   stop)
from tests.desktop.gui import descendants, running
from tests.helpers import wait_for


def test_job_object_limits_have_the_windows_sdk_layout() -> None:
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(JobBasicLimits) == 64
        assert ctypes.sizeof(JobExtendedLimits) == 144
        assert JobExtendedLimits.IoInfo.offset == 64


def test_stop_ends_the_child_and_what_it_started() -> None:
    """A child that starts a grandchild (as ssh -J starts a second ssh) and ignores
    SIGTERM in its own process: both end."""
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, "
              "signal.SIG_IGN); subprocess.Popen([sys.executable, '-c', "
              "'import time; time.sleep(600)']); print('ready', flush=True); time.sleep(600)")
    proc = spawn([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    family = {proc.pid} | descendants(proc.pid)
    assert len(family) == 2
    stop(proc, timeout=1.0)
    proc.stdout.close()
    assert proc.poll() is not None
    wait_for(lambda: not any(running(pid) for pid in family), 20,
             what="the grandchild to end with its parent")
