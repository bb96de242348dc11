"""Start a helper program (ssh) so it cannot outlive the app, and stop it with its own
children (ssh -J runs a second ssh), on every OS.

* POSIX: the child leads a new session (process group), stopped with ``killpg``
  (SIGTERM, then SIGKILL); on Linux ``PR_SET_PDEATHSIG`` also has the kernel end it when
  the thread that started it dies, so even a SIGKILLed app leaves none behind.
* Windows: no process groups to signal, no ``killpg``/SIGKILL and no ``preexec_fn``. The
  child gets ``CREATE_NEW_PROCESS_GROUP`` (a Ctrl+C in our console does not reach it)
  and is put in a Job object that kills everything in it when its last handle closes:
  when we stop it, or when the app dies in any way.
* Anywhere ``killpg`` is missing, the child alone is terminated (ssh ends its -J helper
  itself on SIGTERM).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

PR_SET_PDEATHSIG = 1
_WINDOWS = sys.platform == "win32"


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent thread dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(argv: Sequence[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(argv, **popen)`` isolated as above; raises OSError."""
    if _WINDOWS:
        popen["creationflags"] = popen.get("creationflags", 0) \
            | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        popen["start_new_session"] = True
        if sys.platform.startswith("linux"):
            popen["preexec_fn"] = die_with_parent
    proc = subprocess.Popen(argv, **popen)
    if _WINDOWS:
        with _jobs_lock:
            for done in [p for p in _jobs if p.poll() is not None]:
                _jobs.pop(done).close()  # ended by itself: release its job (and leftovers)
            _jobs[proc] = _KillOnCloseJob(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 3.0) -> None:
    """End ``proc`` and what it started: politely, then by force if it lingers."""
    with _jobs_lock:
        job = _jobs.pop(proc, None)
    if job is not None:
        job.close()  # Windows: terminates every process in the job
    for polite in (True, False):
        if proc.poll() is not None:
            return
        _signal(proc, polite)
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _signal(proc: subprocess.Popen, polite: bool) -> None:
    killpg = getattr(os, "killpg", None)
    force = getattr(signal, "SIGKILL", None)
    try:
        if killpg is not None and force is not None:
            killpg(proc.pid, signal.SIGTERM if polite else force)
        elif polite:
            proc.terminate()
        else:
            proc.kill()
    except ProcessLookupError:
        pass


# -- Windows Job objects (ctypes; this code cannot run on the Linux test machine) ------

_jobs: dict[subprocess.Popen, _KillOnCloseJob] = {}
_jobs_lock = threading.Lock()
_JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
_JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9


class JobBasicLimits(ctypes.Structure):
    """JOBOBJECT_BASIC_LIMIT_INFORMATION (64 bytes on 64-bit Windows)."""

    _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64),
                ("PerJobUserTimeLimit", ctypes.c_int64), ("LimitFlags", ctypes.c_uint32),
                ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t),
                ("ActiveProcessLimit", ctypes.c_uint32), ("Affinity", ctypes.c_size_t),
                ("PriorityClass", ctypes.c_uint32), ("SchedulingClass", ctypes.c_uint32)]


class JobExtendedLimits(ctypes.Structure):
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION (144 bytes on 64-bit Windows)."""

    _fields_ = [("BasicLimitInformation", JobBasicLimits),
                ("IoInfo", ctypes.c_uint64 * 6), ("ProcessMemoryLimit", ctypes.c_size_t),
                ("JobMemoryLimit", ctypes.c_size_t), ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t)]


class _KillOnCloseJob:
    """A Job object holding one child (and what it starts later); closing it, or our
    process ending, kills them all. Best effort: a failure leaves plain termination."""

    def __init__(self, proc: subprocess.Popen) -> None:
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self._kernel32 = kernel32
        self._handle = kernel32.CreateJobObjectW(None, None)
        if not self._handle:
            return
        limits = JobExtendedLimits()
        limits.BasicLimitInformation.LimitFlags = _JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not (kernel32.SetInformationJobObject(
                self._handle, _JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS,
                ctypes.byref(limits), ctypes.sizeof(limits))
                and kernel32.AssignProcessToJobObject(self._handle, int(proc._handle))):
            self.close()

    def close(self) -> None:
        if self._handle:
            self._kernel32.CloseHandle(self._handle)
            self._handle = None
