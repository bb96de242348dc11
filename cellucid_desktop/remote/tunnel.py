"""Run ``ssh -N -L`` and watch it: wait until the forward answers, reconnect with
backoff when it drops, and make sure no ssh outlives the app (``child_process.py``).

A tunnel that was up once is never given up by itself: the user's viewer URL points at
its local port, so every reconnect comes back on that port (waiting while something
else holds it), for as long as the connection is kept. Only what retrying cannot fix
(authentication, host keys, nothing listening) ends it.

Besides ssh's own keep-alives, the forward itself is asked for ``/_cellucid/health``
every ``HEALTH_INTERVAL`` s: a frozen link (a closed lid, a dead Wi-Fi) shows as a
forward that stops answering, and ssh is restarted. After the app or the machine slept
(more time passed than the supervisor waited), it asks at once.
"""

from __future__ import annotations

import atexit
import collections
import enum
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cellucid_desktop.remote.child_process import spawn, stop as stop_process
from cellucid_desktop.remote.errors import SshProblem, diagnose
from cellucid_desktop.remote.ports import holder, is_free, who_holds
from cellucid_desktop.remote.probe import fetch
from cellucid_desktop.remote.ssh_command import (TunnelSpec, display_command, server_command,
                                                 tunnel_argv)

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# While up: ask the forward every HEALTH_INTERVAL s; HEALTH_MISSES answers missed in a
# row (each waited for HEALTH_TIMEOUT s) restart ssh. A frozen link is so noticed within
# about 30 s, well before ssh's keep-alives (ssh_command.SUPERVISOR_OPTIONS, 45-60 s)
# would.
HEALTH_INTERVAL = 10.0
HEALTH_TIMEOUT = 10.0
HEALTH_MISSES = 2
# Seconds lost beyond a wait (the process was stopped, the machine suspended) that count
# as "asleep": the link is then checked at once, and one answer missed within
# WAKE_TIMEOUT s restarts ssh (after a sleep the old path is often gone without a word).
SLEEP_GAP = 5.0
WAKE_TIMEOUT = 3.0
TICK = 1.0  # how often the supervisor looks at the clocks


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


class SleepClock:
    """Notices time this process did not see pass: the monotonic clock stops while the
    machine is suspended (Linux, macOS) but the wall clock does not; and a stopped
    process wakes from a wait long after it was due."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        self._mono, self._wall = time.monotonic(), time.time()

    def lost(self, waited: float) -> float:
        """Seconds unaccounted for since ``mark()``, beyond ``waited``."""
        mono = time.monotonic() - self._mono
        wall = time.time() - self._wall
        return max(mono - waited, wall - mono, 0.0)


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
        was_up = False  # once up, the local port is the user's URL: never give it up
        state = TunnelState.CONNECTING
        while not self._stop.is_set():
            self._set(TunnelStatus(state, f"Connecting to {self.spec.target}...", failures))
            problem = self._run_once()
            if self._stop.is_set():
                break
            if problem is None or problem.kind == "not-answering":
                was_up, failures = True, 0
                problem = problem or self._lost()
            elif was_up and problem.kind == "local-port-busy":
                problem = SshProblem(problem.kind, f"The local port {self.local_port} is "
                                     f"in use{self._holder()}; waiting for it, so the viewer "
                                     "URL stays the same.", True)
            if not problem.retry:
                self._set(TunnelStatus(TunnelState.FAILED, problem.message, failures, problem))
                break
            failures += 1
            if not was_up and failures > self.max_failures:
                self._set(TunnelStatus(TunnelState.FAILED, f"{problem.message} Gave up after "
                                       f"{self.max_failures} attempts.", failures, problem))
                break
            delay = self.backoff[min(failures, len(self.backoff)) - 1]
            self._set(TunnelStatus(TunnelState.RECONNECTING, f"{problem.message} Reconnecting "
                                   f"in {delay:g} s...", failures, problem))
            self._pause(delay)
            state = TunnelState.RECONNECTING
        with _live_lock:
            _live.discard(self)

    def _pause(self, seconds: float) -> None:
        """Wait before the next attempt; cut short by stop() or by waking from sleep."""
        clock = SleepClock()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            clock.mark()
            if self._stop.wait(min(left, TICK)) or clock.lost(min(left, TICK)) > SLEEP_GAP:
                return

    def _run_once(self) -> SshProblem | None:
        """Start ssh, wait until it forwards, then watch it. None = it was up and ssh
        exited (or the tunnel was stopped); "not-answering" = it was up and froze."""
        if self._stop.is_set():
            return None
        if not is_free(self.local_port):
            return self._port_busy()
        self._stderr.clear()
        try:
            proc = spawn(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
        except OSError as exc:
            return SshProblem("no-ssh", f"Could not run ssh ({exc.strerror}); install the "
                              "OpenSSH client.", False)
        self._proc = proc
        exited = threading.Event()
        reader = threading.Thread(target=self._read_stderr, args=(proc, exited), daemon=True)
        reader.start()
        try:
            problem = self._await_forward(proc)
            if problem is not None or self._stop.is_set():
                return problem  # (None when stopped meanwhile: ``finally`` ends this ssh)
            self._set(TunnelStatus(TunnelState.CONNECTED, f"Connected: 127.0.0.1:"
                                   f"{self.local_port} -> "
                                   f"{self.spec.forward(self.local_port).destination} via "
                                   f"{self.spec.target}"))
            problem = self._watch(exited)
            stop_process(proc)  # when it froze; then its last lines say why it ended
            reader.join(2)
            return problem
        finally:
            stop_process(proc)

    def _watch(self, exited: threading.Event) -> SshProblem | None:
        """While ssh runs, check that the forward still answers (see the module
        docstring). Returns when ssh exited or the tunnel stops (None), or with a
        problem when the forward stopped answering (the caller then ends this ssh).

        It wakes every ``TICK`` s: a tick that comes late by more than SLEEP_GAP s
        (or a wall clock that ran ahead of the monotonic one) means we slept."""
        clock = SleepClock()
        misses, next_check = 0, time.monotonic() + HEALTH_INTERVAL
        while True:
            clock.mark()
            if exited.wait(TICK) or self._stop.is_set():
                return None
            lost = clock.lost(TICK)
            asleep = lost > SLEEP_GAP
            if asleep:
                log.info("tunnel %s: %.0f s passed unseen (asleep?); checking it now",
                         self.local_port, lost)
            elif time.monotonic() < next_check:
                continue
            if self._answers(WAKE_TIMEOUT if asleep else HEALTH_TIMEOUT):
                misses, next_check = 0, time.monotonic() + HEALTH_INTERVAL
                continue
            misses += 1
            if exited.is_set() or self._stop.is_set():
                return None
            if asleep or misses >= HEALTH_MISSES:
                return SshProblem("not-answering", f"The tunnel to {self.spec.target} "
                                  "stopped answering (a frozen network, or the computer "
                                  "was asleep).", True)
            next_check = time.monotonic()  # ask again at once

    def _answers(self, timeout: float) -> bool:
        try:
            fetch(self.local_port, "/_cellucid/health", host_port=self.spec.remote_port,
                  timeout=timeout)
            return True
        except OSError:
            return False

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
                if self._answered_by(proc):
                    return None
            except ConnectionRefusedError:
                pass  # ssh is still logging in; the local end is not bound yet
            except TimeoutError:
                pass  # no answer yet: a slow or frozen link or server, not a refusal
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

    def _answered_by(self, proc: subprocess.Popen) -> bool:
        """Whether our ssh holds the local port that answered. Between the port check and
        ssh's bind (its whole sign-in) another program may take the port; its answer is
        not the remote's, and this ssh will fail to bind and say so. Where the holder
        cannot be seen, an answer is trusted."""
        found = holder(self.local_port)
        if found is None or found[0] == proc.pid:
            return True
        log.info("tunnel %s: answered by %s (PID %d), not by ssh; waiting for ssh",
                 self.local_port, found[1], found[0])
        return False

    def _read_stderr(self, proc: subprocess.Popen, exited: threading.Event) -> None:
        """Keep ssh's last lines (errors.py reads them); set ``exited`` when it ends."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self._stderr.append(line)
                log.debug("ssh: %s", line)
        proc.wait()
        exited.set()

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

    def _lost(self) -> SshProblem:
        """Why an established connection ended: ssh's words if they name a retryable
        problem, else a plain "lost"."""
        problem = self._problem() if self._stderr else None
        return problem if problem and problem.retry else SshProblem(
            "connection-lost", f"The SSH connection to {self.spec.target} was lost.", True)

    def _holder(self) -> str:
        holder = who_holds(self.local_port)
        return f" by {holder}" if holder else ""

    def _port_busy(self) -> SshProblem:
        """The same problem ssh reports when it cannot bind the port (errors.py)."""
        return diagnose(f"bind [127.0.0.1]:{self.local_port}: Address already in use", None,
                        **self._context())
