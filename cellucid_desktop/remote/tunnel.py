"""Run ``ssh -N -L`` and watch it: wait until the forward answers, reconnect with
backoff when it drops, and make sure no ssh outlives the app.

Each ssh runs in its own process group (so a jump-host child ssh goes with it), is
stopped by PID, and on Linux also gets ``PR_SET_PDEATHSIG`` so the kernel kills it if
the thread that started it, or the whole app, dies without running ``atexit``.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import enum
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cellucid_desktop.remote.errors import SshProblem, diagnose
from cellucid_desktop.remote.ports import is_free, who_holds
from cellucid_desktop.remote.probe import fetch
from cellucid_desktop.remote.ssh_command import (TunnelSpec, display_command, server_command,
                                                 tunnel_argv)

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
PR_SET_PDEATHSIG = 1


class TunnelState(str, enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class TunnelStatus:
    state: TunnelState
    message: str
    attempt: int = 0
    problem: SshProblem | None = None


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent thread dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def stop_process(proc: subprocess.Popen, timeout: float = 3.0) -> None:
    """SIGTERM the process group led by ``proc``, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


_live: set[Tunnel] = set()
_live_lock = threading.Lock()


@atexit.register
def stop_all() -> None:
    """Quit stops every tunnel (also called by the app's own shutdown)."""
    with _live_lock:
        tunnels = list(_live)
    for tunnel in tunnels:
        tunnel.stop()


class Tunnel:
    """One supervised forward ``127.0.0.1:local_port -> remote_port``.

    ``on_status`` is called (from the supervisor thread) on every state change. The
    forward counts as up when an HTTP request through it gets any answer.
    """

    def __init__(self, spec: TunnelSpec, local_port: int, *,
                 on_status: Callable[[TunnelStatus], None] | None = None,
                 backoff: Sequence[float] = BACKOFF, max_failures: int = 8,
                 ready_timeout: float = 30.0) -> None:
        self.spec = spec.validated()
        self.local_port = local_port
        self.argv = tunnel_argv(self.spec, local_port)
        self.on_status = on_status
        self.backoff = tuple(backoff)
        self.max_failures = max_failures
        self.ready_timeout = ready_timeout
        self.server_hint = server_command("data.h5ad", self.spec.remote_port,
                                          program="cellucid-desktop" if self.spec.remote_socket
                                          else "cellucid", socket=self.spec.remote_socket)
        self.status = TunnelStatus(TunnelState.STOPPED, "Not started")
        self._proc: subprocess.Popen | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def command(self) -> str:
        return display_command(self.spec, self.local_port)

    def start(self) -> Tunnel:
        if self._thread is not None:
            raise RuntimeError("a Tunnel is started once")
        with _live_lock:
            _live.add(self)
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name=f"ssh-tunnel-{self.local_port}")
        self._thread.start()
        return self

    def wait_until(self, states: set[TunnelState], timeout: float) -> TunnelStatus:
        """Block until the state is one of ``states`` (or timeout); returns the status."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.status.state not in states:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self.status

    def wait_connected(self, timeout: float = 60.0) -> TunnelStatus:
        return self.wait_until({TunnelState.CONNECTED, TunnelState.FAILED,
                                TunnelState.STOPPED}, timeout)

    def stop(self) -> None:
        """Stop ssh and the supervisor; safe to call twice and from any thread."""
        self._stop.set()
        proc = self._proc
        if proc is not None:
            stop_process(proc)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        with _live_lock:
            _live.discard(self)
        if self.status.state != TunnelState.FAILED:
            self._set(TunnelStatus(TunnelState.STOPPED, "Disconnected"))

    # -- supervisor thread ---------------------------------------------------------

    def _set(self, status: TunnelStatus) -> None:
        with self._changed:
            self.status = status
            self._changed.notify_all()
        log.info("tunnel %s: %s %s", self.local_port, status.state.value, status.message)
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:  # noqa: BLE001 - a listener's bug must not kill the tunnel
                log.exception("tunnel status listener failed")

    def _supervise(self) -> None:
        failures = 0
        state = TunnelState.CONNECTING
        while not self._stop.is_set():
            self._set(TunnelStatus(state, f"Connecting to {self.spec.target}...", failures))
            problem = self._run_once()
            if self._stop.is_set():
                break
            if problem is None:  # was up, then dropped
                failures = 0
                problem = self._problem() if self._stderr else None
                problem = problem if problem and problem.retry else SshProblem(
                    "connection-lost", f"The SSH connection to {self.spec.target} was lost.",
                    True)
            if not problem.retry:
                self._set(TunnelStatus(TunnelState.FAILED, problem.message, failures, problem))
                break
            failures += 1
            if failures > self.max_failures:
                self._set(TunnelStatus(TunnelState.FAILED, f"{problem.message} Gave up after "
                                       f"{self.max_failures} attempts.", failures, problem))
                break
            delay = self.backoff[min(failures, len(self.backoff)) - 1]
            self._set(TunnelStatus(TunnelState.RECONNECTING, f"{problem.message} Reconnecting "
                                   f"in {delay:g} s...", failures, problem))
            self._stop.wait(delay)
            state = TunnelState.RECONNECTING
        with _live_lock:
            _live.discard(self)

    def _run_once(self) -> SshProblem | None:
        """Start ssh, wait until it forwards, then until it exits. None = it was up (or
        the tunnel was stopped)."""
        if self._stop.is_set():
            return None
        if not is_free(self.local_port):
            return self._port_busy()
        self._stderr.clear()
        kwargs = {"preexec_fn": die_with_parent} if sys.platform.startswith("linux") else {}
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True, **kwargs)
        except OSError as exc:
            return SshProblem("no-ssh", f"Could not run ssh ({exc.strerror}); install the "
                              "OpenSSH client.", False)
        self._proc = proc
        reader = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        reader.start()
        try:
            problem = self._await_forward(proc)
            if problem is not None or self._stop.is_set():
                return problem  # (None when stopped meanwhile: ``finally`` ends this ssh)
            self._set(TunnelStatus(TunnelState.CONNECTED, f"Connected: 127.0.0.1:"
                                   f"{self.local_port} -> "
                                   f"{self.spec.forward(self.local_port).destination} via "
                                   f"{self.spec.target}"))
            proc.wait()
            reader.join(2)
            return None
        finally:
            stop_process(proc)

    def _await_forward(self, proc: subprocess.Popen) -> SshProblem | None:
        deadline = time.monotonic() + self.ready_timeout
        far_end_closed = False  # ssh took the connection but the remote side refused it
        while not self._stop.is_set():
            if proc.poll() is not None:
                time.sleep(0.1)  # let the reader drain the last lines
                return self._problem(proc.returncode)
            try:
                fetch(self.local_port, "/_cellucid/health", host_port=self.spec.remote_port,
                      timeout=5)
                return None
            except ConnectionRefusedError:
                pass  # ssh is still logging in; the local end is not bound yet
            except OSError:
                far_end_closed = True
            if time.monotonic() > deadline:
                problem = self._problem(None)
                if problem.kind == "nothing-listening" or problem.retry is False:
                    return problem
                if far_end_closed:
                    return diagnose("open failed: connect failed: Connection refused", None,
                                    **self._context())
                return SshProblem("timeout", f"No answer through the tunnel after "
                                  f"{self.ready_timeout:g} s.", True)
            self._stop.wait(0.3)
        return None

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._stderr.append(line)
                log.debug("ssh: %s", line)

    def _text(self) -> str:
        return "\n".join(self._stderr)

    def _context(self) -> dict[str, object]:
        return {"host": self.spec.target, "command": self.command,
                "local_port": self.local_port,
                "remote_port": self.spec.remote_socket or self.spec.remote_port,
                "node": self.spec.node, "holder": who_holds(self.local_port),
                "server_command": self.server_hint}

    def _problem(self, returncode: int | None = None) -> SshProblem:
        return diagnose(self._text(), returncode, **self._context())

    def _port_busy(self) -> SshProblem:
        """The same problem ssh reports when it cannot bind the port (errors.py)."""
        return diagnose(f"bind [127.0.0.1]:{self.local_port}: Address already in use", None,
                        **self._context())
