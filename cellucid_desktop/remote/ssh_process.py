"""An ssh child that signs in through our prompts and is supervised for its whole life.

The shared part of ``master.Master`` (ControlMaster) and ``single_session.SingleSession``
(the fallback without multiplexing): start ssh with the askpass environment of a fresh
``AskpassSession``, wait until it is signed in (each subclass knows how to tell), report
a failed sign-in in one sentence (``errors.diagnose_login``), and notice when ssh ends on
its own after that (*lost*, with ssh's reason). Nothing here reconnects: authentication
is never retried without the user.

The ssh is our child, never a daemon: its own session and process group (no terminal to
prompt on; stopped by PID), and on Linux ``PR_SET_PDEATHSIG`` kills it with the thread
that started it. That thread is the connection's own supervisor thread, which lives as
long as ssh does, so a connection opened from a short-lived worker thread survives it.
"""

from __future__ import annotations

import atexit
import collections
import enum
import logging
import subprocess
import threading
import time
from collections.abc import Callable

from cellucid_desktop.remote.child_process import spawn, stop as stop_process
from cellucid_desktop.remote.errors import SshProblem, diagnose, diagnose_login
from cellucid_desktop.remote.hops import hop_names, resolve_hops
from cellucid_desktop.remote.prompt_broker import AskpassSession, PromptBroker
from cellucid_desktop.remote.ssh_command import HostSpec

log = logging.getLogger(__name__)


class SshError(Exception):
    """Signing in or an operation failed; ``problem.message`` is the sentence to show."""

    def __init__(self, problem: SshProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class SshState(str, enum.Enum):
    NEW = "new"
    SIGNING_IN = "signing-in"
    READY = "ready"
    FAILED = "failed"   # sign-in failed (see ``problem``)
    LOST = "lost"       # ssh ended by itself after signing in (see ``problem``)
    CLOSED = "closed"   # closed by us


_live: set[SshProcess] = set()
_live_lock = threading.Lock()


@atexit.register
def close_all() -> None:
    """Quit ends every signed-in ssh (also callable from the app's own shutdown)."""
    with _live_lock:
        connections = list(_live)
    for connection in connections:
        connection.close()


class SshProcess:
    """Base class: subclasses give ``_argv()`` and ``_await_sign_in(proc)``, and may
    override ``_popen_options``, ``_before_close`` and ``_ended``. ``reason`` (shown with
    the prompts) says why the user is asked again, e.g. after the previous connection was
    lost; ``on_line`` gets each line ssh writes to stderr."""

    def __init__(self, host: HostSpec, broker: PromptBroker, *, ssh: str = "ssh",
                 reason: str = "", on_line: Callable[[str], None] | None = None) -> None:
        self.host = host.validated()
        self.broker = broker
        self.ssh = ssh
        self.reason = reason
        self.on_line = on_line
        self.state = SshState.NEW
        self.problem: SshProblem | None = None
        self._listeners: list[Callable[[SshProblem], None]] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._lines = 0  # stderr lines seen so far (``line_mark`` / ``lines_since``)
        self._said = threading.Condition()  # notified with each stderr line
        self._proc: subprocess.Popen | None = None
        self._session: AskpassSession | None = None
        self._closing = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- for subclasses ------------------------------------------------------------------

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _await_sign_in(self, proc: subprocess.Popen) -> bool:
        """Block until signed in (True), or until ssh exits or ``_closing`` is set."""
        raise NotImplementedError

    def _popen_options(self) -> dict:
        return {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL}

    def _before_close(self) -> None:
        """Ask ssh to end cleanly before it is stopped by PID (READY only)."""

    # -- life cycle ----------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> SshProcess:
        """Sign in (prompting through the broker) and return once ready.

        Blocks while the user answers; ``timeout`` (None = as long as the server allows)
        bounds the whole sign-in. Raises ``SshError`` saying why it failed.
        """
        if self._thread is not None:
            raise RuntimeError("an ssh connection is started once")
        with _live_lock:
            _live.add(self)
        self._set(SshState.SIGNING_IN)
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name=f"ssh-{self.host.target}")
        self._thread.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.state is SshState.SIGNING_IN:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left)
        if self.state is SshState.SIGNING_IN:
            self.close()
            raise SshError(SshProblem("timeout", f"Signing in to {self.host.target} took "
                                      f"longer than {timeout:g} s.", True))
        if self.state is not SshState.READY:
            raise SshError(self.problem or SshProblem(
                "closed", f"The connection to {self.host.target} was closed.", False))
        return self

    @property
    def alive(self) -> bool:
        proc = self._proc
        return self.state is SshState.READY and proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def stderr_tail(self) -> list[str]:
        """ssh's last messages (e.g. forward failures through this connection)."""
        return list(self._stderr)

    def line_mark(self) -> int:
        """A mark for ``lines_since``: how many stderr lines ssh wrote so far."""
        return self._lines

    def lines_since(self, mark: int, containing: str = "", *,
                    wait: float = 0.0) -> list[str]:
        """ssh's stderr lines written after ``mark`` (the last 200 at most) that contain
        ``containing``: what one request through a forward made ssh say, e.g.
        ``channel 3: open failed: ...``. Waits up to ``wait`` s for one to arrive (ssh
        writes it as it closes the request, a moment later on a loaded machine)."""
        with self._said:
            self._said.wait_for(lambda: self._since(mark, containing), wait)
            return self._since(mark, containing)

    def _since(self, mark: int, containing: str) -> list[str]:
        new = self._lines - mark
        lines = list(self._stderr)[-new:] if new > 0 else []
        return [line for line in lines if containing in line]

    def add_listener(self, listener: Callable[[SshProblem], None]) -> None:
        """Call ``listener(problem)`` (from the supervisor thread) if the connection is
        lost; at once if it already is."""
        with self._changed:
            self._listeners.append(listener)
            lost = self.problem if self.state is SshState.LOST else None
        if lost is not None:
            listener(lost)

    def close(self, graceful: bool = True) -> None:
        """End the connection; safe twice and from any thread. ``graceful`` False skips
        asking ssh to end by itself (a frozen link would keep it waiting)."""
        self._closing.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self.state is SshState.READY and graceful:
                self._before_close()
            stop_process(proc)
        if self._session is not None:
            self._session.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        with _live_lock:
            _live.discard(self)
        if self.state in (SshState.NEW, SshState.SIGNING_IN, SshState.READY):
            self._set(SshState.CLOSED)

    def _require_alive(self) -> None:
        if not self.alive:
            raise SshError(self.problem or SshProblem(
                "not-connected", f"Not signed in to {self.host.target}.", True))

    # -- supervisor thread ---------------------------------------------------------------

    def _set(self, state: SshState, problem: SshProblem | None = None) -> None:
        with self._changed:
            self.state = state
            if problem is not None:
                self.problem = problem
            self._changed.notify_all()
            listeners = list(self._listeners) if state is SshState.LOST else []
        log.info("ssh %s: %s %s", self.host.target, state.value,
                 problem.message if problem else "")
        for listener in listeners:
            try:
                listener(problem)
            except Exception:  # noqa: BLE001 - one listener's bug must not stop the rest
                log.exception("ssh connection listener failed")

    def _supervise(self) -> None:
        names = hop_names(resolve_hops(self.host, ssh=self.ssh))
        session = self._session = self.broker.session(self.host.target, self.reason,
                                                      on_abandon=self._abandon)
        try:
            proc = spawn(self._argv(), stderr=subprocess.PIPE, env=session.env(),
                         **self._popen_options())
        except OSError as exc:
            session.close()
            self._set(SshState.FAILED, SshProblem(
                "no-ssh", f"Could not run ssh ({exc.strerror}); install the OpenSSH client.",
                False))
            return
        self._proc = proc
        reader = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        reader.start()
        signed_in = not self._closing.is_set() and self._await_sign_in(proc)
        session.close()
        if signed_in:
            self._set(SshState.READY)
        elif self._closing.is_set():
            stop_process(proc)
        proc.wait()
        reader.join(2)
        self._ended()
        with _live_lock:
            _live.discard(self)
        if self._closing.is_set():
            return  # close() reports CLOSED
        if not signed_in:
            self._set(SshState.FAILED, diagnose_login(
                self._text(), proc.returncode, host=self.host.target,
                records=session.records, names=names))
        else:
            self._set(SshState.LOST, self._lost_problem())

    def _abandon(self) -> None:
        """Stop a sign-in that cannot succeed before ssh sends another answer."""
        proc = self._proc
        if proc is not None:
            stop_process(proc)

    def _ended(self) -> None:
        """Clean up after ssh exited (before the state changes)."""

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                with self._said:
                    self._stderr.append(line)
                    self._lines += 1
                    self._said.notify_all()
                log.debug("ssh %s: %s", self.host.target, line)
                if self.on_line is not None:
                    self.on_line(line)

    def _text(self) -> str:
        return "\n".join(self._stderr)

    def _lost_problem(self) -> SshProblem:
        """Why a signed-in ssh ended, with ssh's own last words."""
        proc = self._proc
        code = proc.poll() if proc is not None else None
        problem = diagnose(self._text(), code, host=self.host.target)
        last = self._stderr[-1] if self._stderr else ""
        if last and last not in problem.message:
            problem = SshProblem(problem.kind, f"{problem.message} (ssh: {last})",
                                 problem.retry)
        return problem
