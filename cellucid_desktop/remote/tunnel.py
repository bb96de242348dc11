"""A forward from a local port to the remote server, watched: wait until it answers,
restore it with backoff when it drops, and report at once what cannot be restored.

The forward rides the host's one signed-in master (``MasterPool``; ``links.py``), or,
where ssh cannot multiplex, one ssh of its own. Nothing here runs ssh in BatchMode or
signs in by itself: a reconnect reuses the master, and only when the master itself is
gone does the pool sign in again, which asks the user (with the reason) if the host
wants a password. A sign-in the user answered that failed is never retried.

A tunnel that was up once is never given up by itself: the user's viewer URL points at
its local port, so every reconnect comes back on that port (waiting while something
else holds it), for as long as the connection is kept. Only what retrying cannot fix
(authentication, host keys, nothing listening) ends it.

"Nothing listening" is known as soon as ssh says so: a request through the forward is
closed and the connection's ssh writes ``channel N: open failed: connect failed: ...``
(``Link.lines_since``). While up, the forward itself is asked for ``/_cellucid/health``
every ``HEALTH_INTERVAL`` s: a server that stopped shows as nothing listening (reported
within seconds), a frozen link (a closed lid, a dead Wi-Fi) as a forward that stops
answering (the connection is replaced). After the app or the machine slept (more time
passed than the supervisor waited), it asks at once.
"""

from __future__ import annotations

import atexit
import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cellucid_desktop.remote.errors import SshProblem, diagnose
from cellucid_desktop.remote.links import Link
from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.ports import holder, is_free, who_holds
from cellucid_desktop.remote.probe import fetch
from cellucid_desktop.remote.prompt_broker import PromptBroker, PromptRequest
from cellucid_desktop.remote.ssh_command import (Forward, TunnelSpec, display_command,
                                                 server_command)
from cellucid_desktop.remote.ssh_process import SshError

log = logging.getLogger(__name__)

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# While up: ask the forward every HEALTH_INTERVAL s (a stopped server is so reported
# within seconds; the request is a few hundred bytes); HEALTH_MISSES answers missed in
# a row (each waited for HEALTH_TIMEOUT s) replace the connection. A frozen link is so
# noticed within about 25 s, before the master's keep-alives (45-60 s) would.
HEALTH_INTERVAL = 3.0
HEALTH_TIMEOUT = 10.0
HEALTH_MISSES = 2
# Seconds lost beyond a wait (the process was stopped, the machine suspended) that count
# as "asleep": the link is then checked at once, and one answer missed within
# WAKE_TIMEOUT s restarts ssh (after a sleep the old path is often gone without a word).
SLEEP_GAP = 5.0
WAKE_TIMEOUT = 3.0
TICK = 1.0  # how often the supervisor looks at the clocks
REFUSAL_WAIT = 2.0  # at most this for ssh's "open failed" after a failed request


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


class _NoOne:
    """The front end of a tunnel given no pool: nobody can answer (the old BatchMode
    behaviour, for key and agent sign-in); what was asked is kept for the message."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, request: PromptRequest) -> None:
        self.asked.append(request.prompt.text.strip().splitlines()[-1])
        return None


class Tunnel:
    """One supervised forward ``127.0.0.1:local_port -> remote_port`` (or socket).

    ``masters`` is the app's pool (its broker asks the user); None = a private pool that
    asks nobody (key or agent sign-in only), closed with the tunnel. ``on_status`` is
    called (from the supervisor thread) on every state change. The forward counts as up
    when an HTTP request through it gets any answer.
    """

    def __init__(self, spec: TunnelSpec, local_port: int, *,
                 masters: MasterPool | None = None,
                 on_status: Callable[[TunnelStatus], None] | None = None,
                 backoff: Sequence[float] = BACKOFF, max_failures: int = 8,
                 ready_timeout: float = 30.0) -> None:
        self.spec = spec.validated()
        self.local_port = local_port
        self.on_status = on_status
        self.backoff = tuple(backoff)
        self.max_failures = max_failures
        self.ready_timeout = ready_timeout
        self._no_one: _NoOne | None = None
        if masters is None:
            self._no_one = _NoOne()
            masters = MasterPool(PromptBroker(self._no_one).start())
        self.masters = masters
        self.server_hint = server_command("data.h5ad", self.spec.remote_port,
                                          program="cellucid-desktop" if self.spec.remote_socket
                                          else "cellucid", socket=self.spec.remote_socket)
        self.status = TunnelStatus(TunnelState.STOPPED, "Not started")
        self._link: Link | None = None
        self._reason = ""  # why the next sign-in happens (a lost single session)
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The ssh carrying the forward (the host's master), while it runs."""
        link = self._link
        return link.pid if link is not None else None

    @property
    def argv(self) -> list[str]:
        """The ssh command carrying the forward (empty before the first sign-in)."""
        link = self._link
        return link.argv if link is not None else []

    @property
    def forward(self) -> Forward:
        """What is forwarded: ``127.0.0.1:local_port`` to the server's port or socket."""
        return self.spec.forward(self.local_port)

    @property
    def command(self) -> str:
        """The equivalent command for a terminal (where passwords and 2FA work too)."""
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
        """Remove the forward and stop the supervisor; safe to call twice and from any
        thread. A private pool's master (and its broker) end with it."""
        self._stop.set()
        if self._no_one is not None:
            self.masters.close_all()  # also ends a sign-in in progress
        if self._thread is not None and self._thread is not threading.current_thread():
            # A sign-in on a shared pool may wait for the user: the supervisor then
            # releases its forward by itself when the sign-in returns.
            self._thread.join(15 if self._no_one is not None else 3)
        if self._no_one is not None:
            self.masters.close_all()
            self.masters.broker.close()
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
            self._reason = f"{problem.message} Sign in again to continue."
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
        """Sign in (or reuse the master), forward, wait until it answers, then watch it.
        None = it was up and the connection ended (or the tunnel was stopped);
        "not-answering" = it was up and froze."""
        if self._stop.is_set():
            return None
        if not is_free(self.local_port):
            return self._port_busy()
        link = Link(self.masters, self.spec.host, self.forward)
        self._link = link
        frozen: SshProblem | None = None
        try:
            try:
                link.open(self._reason)
            except SshError as exc:
                return self._sign_in_problem(exc.problem)
            problem = self._await_forward(link)
            if problem is not None or self._stop.is_set():
                return problem  # (None when stopped meanwhile: ``finally`` releases it)
            self._set(TunnelStatus(TunnelState.CONNECTED, f"Connected: 127.0.0.1:"
                                   f"{self.local_port} -> "
                                   f"{self.spec.forward(self.local_port).destination} via "
                                   f"{self.spec.target}"))
            problem = self._watch(link)
            if problem is not None and problem.kind == "not-answering":
                frozen = problem
            return problem
        finally:
            link.release(frozen)

    def _sign_in_problem(self, problem: SshProblem) -> SshProblem:
        """A failed sign-in; with nobody to answer, say that rather than "cancelled". A
        single session that could not bind the local port says which port (ssh's sign-in
        diagnosis does not know it)."""
        if problem.kind == "local-port-busy":
            return self._port_busy()
        if self._no_one is not None and self._no_one.asked and problem.kind in (
                "sign-in-cancelled", "host-key-rejected"):
            return SshProblem("needs-user", f"{self.spec.target} asks \"{self._no_one.asked[-1]}"
                              "\", and nothing here can answer: connect from the app's "
                              f"connect dialog, or in a terminal with: {self.command}", False)
        return problem

    def _watch(self, link: Link) -> SshProblem | None:
        """While the link lives, check that the forward still answers (see the module
        docstring). Returns when the link ended or the tunnel stops (None), with
        "nothing-listening" when the server went away, or with "not-answering" when the
        forward stopped answering (the caller then drops the connection).

        It wakes every ``TICK`` s: a tick that comes late by more than SLEEP_GAP s
        (or a wall clock that ran ahead of the monotonic one) means we slept."""
        clock = SleepClock()
        misses, next_check = 0, time.monotonic() + HEALTH_INTERVAL
        while True:
            clock.mark()
            if self._stop.wait(TICK) or not link.alive:
                return None
            lost = clock.lost(TICK)
            asleep = lost > SLEEP_GAP
            if asleep:
                log.info("tunnel %s: %.0f s passed unseen (asleep?); checking it now",
                         self.local_port, lost)
            elif time.monotonic() < next_check:
                continue
            answer = self._ask(link, WAKE_TIMEOUT if asleep else HEALTH_TIMEOUT)
            if answer is None:
                misses, next_check = 0, time.monotonic() + HEALTH_INTERVAL
                continue
            if answer.kind != "no-answer":
                return answer  # the far end refused: the link itself is fine
            misses += 1
            if not link.alive or self._stop.is_set():
                return None
            if asleep or misses >= HEALTH_MISSES:
                return SshProblem("not-answering", f"The tunnel to {self.spec.target} "
                                  "stopped answering (a frozen network, or the computer "
                                  "was asleep).", True)
            next_check = time.monotonic()  # ask again at once

    def _ask(self, link: Link, timeout: float) -> SshProblem | None:
        """One health request through the forward: None if anything answered, else the
        problem ("nothing-listening" when ssh said so, "no-answer" otherwise)."""
        mark = link.line_mark()
        try:
            fetch(self.local_port, "/_cellucid/health", host_port=self.spec.remote_port,
                  timeout=timeout)
            return None
        except OSError as exc:
            refused = self._refusal(link, mark)
            if refused is not None:
                return refused
            return SshProblem("no-answer", str(exc) or type(exc).__name__, True)

    def _refusal(self, link: Link, mark: int) -> SshProblem | None:
        """What ssh said about the request made after ``mark``, if it says the far end
        refused (nothing listening, unknown node, forwarding not allowed)."""
        # ssh writes the line as it closes ours; a loaded machine may take a moment to
        # hand it over (only failed requests wait here)
        said = link.lines_since(mark, "open failed", wait=REFUSAL_WAIT)
        return diagnose("\n".join(said), None, **self._context()) if said else None

    def _await_forward(self, link: Link) -> SshProblem | None:
        deadline = time.monotonic() + self.ready_timeout
        far_end_closed = False  # ssh took the connection but the remote side refused it
        while not self._stop.is_set():
            if not link.alive:
                return link.problem or self._lost()
            mark = link.line_mark()
            try:
                fetch(self.local_port, "/_cellucid/health", host_port=self.spec.remote_port,
                      timeout=5)
                if self._answered_by(link):
                    return None
            except ConnectionRefusedError:
                pass  # the local end is not bound (yet)
            except TimeoutError:
                pass  # no answer yet: a slow or frozen link or server, not a refusal
            except OSError:
                refused = self._refusal(link, mark)
                if refused is not None:
                    return refused
                far_end_closed = True
            if time.monotonic() > deadline:
                if far_end_closed:
                    return diagnose("open failed: connect failed: Connection refused", None,
                                    **self._context())
                return SshProblem("timeout", f"No answer through the tunnel after "
                                  f"{self.ready_timeout:g} s.", True)
            self._stop.wait(0.3)
        return None

    def _answered_by(self, link: Link) -> bool:
        """Whether our ssh (the connection carrying the forward) holds the local port
        that answered. While ssh signs in another program may take the port; its answer
        is not the remote's (the forward then fails to bind and says so). Where the
        holder cannot be seen, an answer is trusted."""
        found = holder(self.local_port)
        if found is None or found[0] == link.pid:
            return True
        log.info("tunnel %s: answered by %s (PID %d), not by ssh; waiting for ssh",
                 self.local_port, found[1], found[0])
        return False

    def _context(self) -> dict[str, object]:
        return {"host": self.spec.target, "command": self.command,
                "local_port": self.local_port,
                "remote_port": self.spec.remote_socket or self.spec.remote_port,
                "node": self.spec.node, "holder": who_holds(self.local_port),
                "server_command": self.server_hint}

    def _lost(self) -> SshProblem:
        """Why an established connection ended: ssh's words if they name a retryable
        problem, else a plain "lost"."""
        link = self._link
        problem = link.problem if link is not None else None
        return problem if problem and problem.retry else SshProblem(
            "connection-lost", f"The SSH connection to {self.spec.target} was lost.", True)

    def _holder(self) -> str:
        holder = who_holds(self.local_port)
        return f" by {holder}" if holder else ""

    def _port_busy(self) -> SshProblem:
        """The same problem ssh reports when it cannot bind the port (errors.py)."""
        return diagnose(f"bind [127.0.0.1]:{self.local_port}: Address already in use", None,
                        **self._context())
