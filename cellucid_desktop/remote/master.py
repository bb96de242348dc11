"""One authenticated connection per host (OpenSSH ControlMaster) for everything after.

``Master.start()`` runs ``ssh -M -N`` (``ssh_command.master_argv``) with its prompts
relayed to the user (``prompt_broker``) and returns once signed in. Then ``run``,
``forward``, ``cancel`` and ``check`` go over the live connection (``ssh -O ...`` and
``ssh -o ControlPath=...``, BatchMode) and never prompt. ``MasterPool`` keeps one master
per ``HostSpec`` and signs in again only when asked after the old one was lost.

The master is ``ControlPersist=no``: it lives exactly as long as this supervised child
(``ssh_process``). Control sockets are in this launch's private 0700 folder. Where the
ssh client cannot multiplex (Windows' OpenSSH), ``multiplexing_available()`` is False and
``single_session.SingleSession`` is the fallback.
"""

from __future__ import annotations

import functools
import queue
import secrets
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cellucid_desktop.remote.child_process import spawn, stop as stop_process
from cellucid_desktop.remote.errors import SshProblem, diagnose
from cellucid_desktop.remote.ports import who_holds
from cellucid_desktop.remote.private_dir import private_dir
from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.ssh_command import (Forward, HostSpec, command_argv,
                                                 control_argv, master_argv,
                                                 multiplexing_supported)
from cellucid_desktop.remote.ssh_process import SshError, SshProcess, SshState

POLL = 0.05  # how often a signing-in master is checked for its control socket
CONTROL_TIMEOUT = 15.0
DRAIN_TIMEOUT = 5.0  # at most this to read an ended command's last stderr (ssh exited)


@functools.lru_cache(maxsize=None)
def multiplexing_available(ssh: str = "ssh") -> bool:
    """Whether this ssh client has ControlMaster (``ssh -V``; False without ssh)."""
    try:
        done = subprocess.run([ssh, "-V"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return multiplexing_supported(done.stderr + done.stdout)


@dataclass(frozen=True)
class RemoteResult:
    """A finished remote command: its exit code and output (decoded as UTF-8, undecodable
    bytes kept as surrogate escapes)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class RemoteCommand:
    """A remote command still running: its stdout lines as they come, its stderr kept.

    ``lines(timeout)`` yields each stdout line (without the newline) and ends when the
    command does, with its stderr read to the end; a line not arriving within ``timeout``
    s yields None (so the caller can report progress or give up). ``stop()`` ends the
    local ssh (the remote side sees its channel close)."""

    def __init__(self, proc: subprocess.Popen, input: bytes | None) -> None:
        self.proc = proc
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._feed, args=(input,), daemon=True).start()
        threading.Thread(target=self._read, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def lines(self, timeout: float) -> Iterator[str | None]:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                yield None
                continue
            if line is None:
                self.proc.wait()
                self._stderr_reader.join(DRAIN_TIMEOUT)
                return
            yield line

    def stop(self) -> None:
        stop_process(self.proc)

    def _feed(self, data: bytes | None) -> None:
        assert self.proc.stdin is not None
        try:
            if data:
                self.proc.stdin.write(data)
            self.proc.stdin.close()
        except OSError:
            pass  # the command ended without reading it all

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._queue.put(raw.decode(errors="surrogateescape").rstrip("\r\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace"))
            del self._stderr[:-200]


class Master(SshProcess):
    """The master connection to one host (see the module docstring)."""

    def __init__(self, host: HostSpec, broker: PromptBroker, *, ssh: str = "ssh",
                 reason: str = "", control_dir: Path | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        super().__init__(host, broker, ssh=ssh, reason=reason, on_line=on_line)
        self.control_path = (control_dir or private_dir()) / f"cm-{secrets.token_hex(5)}"

    def check(self) -> bool:
        """Whether the master answers on its control socket."""
        return self.alive and self._control("check").returncode == 0

    def run(self, argv: Sequence[str], *, timeout: float = 30.0,
            input: bytes | None = None) -> RemoteResult:
        """Run ``argv`` on the host (every word ``shlex.quote``d) and wait for it.

        The remote exit code is returned, not raised. ``SshError`` if the master is gone,
        or after ``timeout`` (the local ssh is stopped; a remote program that ignores its
        closed pipes may keep running)."""
        self._require_alive()
        cmd = command_argv(self.host, str(self.control_path), argv, ssh=self.ssh)
        proc = spawn(cmd, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            proc.communicate()
            raise SshError(SshProblem("remote-timeout", f"{argv[0]} on {self.host.target} did "
                                      f"not finish within {timeout:g} s.", True)) from None
        if proc.returncode == 255 and not self.check():
            raise SshError(self.problem or self._lost_problem())
        return RemoteResult(tuple(argv), proc.returncode, out.decode(errors="surrogateescape"),
                            err.decode(errors="surrogateescape"))

    def start_command(self, argv: Sequence[str], *,
                      input: bytes | None = None) -> RemoteCommand:
        """Start ``argv`` on the host (quoted like ``run``) without waiting for it: its
        output lines arrive as it writes them (``RemoteCommand.lines``)."""
        self._require_alive()
        cmd = command_argv(self.host, str(self.control_path), argv, ssh=self.ssh)
        return RemoteCommand(spawn(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE), input)

    def forward(self, forward: Forward) -> Forward:
        """Add ``-L 127.0.0.1:L:...`` to the live master (no prompt). A busy local port
        raises ``SshError`` naming the program holding it."""
        self._require_alive()
        done = self._control("forward", forward)
        if done.returncode == 0:
            return forward
        if not self.check():
            raise SshError(self.problem or self._lost_problem())
        if "forwarding failed" in done.stderr.lower():
            port = forward.local_port
            raise SshError(diagnose(f"bind [127.0.0.1]:{port}: Address already in use", None,
                                    host=self.host.target, local_port=port,
                                    holder=who_holds(port)))
        raise SshError(diagnose(done.stderr, done.returncode, host=self.host.target))

    def cancel(self, forward: Forward) -> None:
        """Remove a forward; its local port is closed when this returns. A forward that
        is not there (any more) is not an error."""
        self._require_alive()
        error = self._control("cancel", forward).stderr.strip()
        if error and "not forwarded" not in error:
            raise SshError(diagnose(error, None, host=self.host.target))

    # -- SshProcess ----------------------------------------------------------------------

    def _argv(self) -> list[str]:
        return master_argv(self.host, str(self.control_path), ssh=self.ssh)

    def _await_sign_in(self, proc: subprocess.Popen) -> bool:
        """Signed in = the control socket exists and answers (ssh makes it after
        authentication)."""
        while not self._closing.is_set() and proc.poll() is None:
            if self.control_path.exists() and self._control("check").returncode == 0:
                return True
            self._closing.wait(POLL)
        return False

    def _before_close(self) -> None:
        self._control("exit", timeout=5)
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def _ended(self) -> None:
        self.control_path.unlink(missing_ok=True)  # left behind if ssh was killed

    def _control(self, operation: str, forward: Forward | None = None, *,
                 timeout: float = CONTROL_TIMEOUT) -> subprocess.CompletedProcess:
        argv = control_argv(self.host, str(self.control_path), operation, forward,
                            ssh=self.ssh)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 255, "", f"ssh -O {operation} did not "
                                               f"answer within {timeout:g} s")


class MasterPool:
    """One master per host for the whole app: ``get`` signs in on first use, reuses the
    live master after, and signs in again (telling the user why) only when called after
    the old one was lost or discarded. Concurrent callers for one host share one
    sign-in. ``multiplexing`` says whether masters exist at all with this ssh client
    (else callers use ``single_session.SingleSession`` with ``broker``)."""

    def __init__(self, broker: PromptBroker, *, ssh: str = "ssh",
                 multiplexing: bool | None = None) -> None:
        self.broker = broker
        self.ssh = ssh
        self.multiplexing = multiplexing_available(ssh) if multiplexing is None \
            else multiplexing
        self._masters: dict[HostSpec, Master] = {}
        self._reasons: dict[HostSpec, str] = {}
        self._locks: dict[HostSpec, threading.Lock] = {}
        self._lock = threading.Lock()

    def discard(self, master: Master, problem: SshProblem) -> None:
        """End a master that stopped answering (a frozen link): it is taken out of the
        pool first, so no ``get`` hands it out while its ssh is being stopped (a frozen
        ssh may take seconds to end); the next ``get`` signs in again saying
        ``problem``'s sentence."""
        with self._lock:
            if self._masters.get(master.host) is master:
                del self._masters[master.host]
                self._reasons[master.host] = problem.message
        master.close(graceful=False)

    def get(self, host: HostSpec, *, timeout: float | None = None) -> Master:
        """The live master for ``host``, signing in if needed; raises ``SshError``."""
        key = host.validated()
        with self._lock:
            host_lock = self._locks.setdefault(key, threading.Lock())
        with host_lock:
            with self._lock:
                master = self._masters.get(key)
                if master is not None and master.alive:
                    return master
                reason = self._reasons.pop(key, "")
            if master is not None and master.state is SshState.LOST and master.problem:
                reason = master.problem.message
            reason = f"{reason} Sign in again to continue." if reason else ""
            master = Master(key, self.broker, ssh=self.ssh, reason=reason)
            with self._lock:
                self._masters[key] = master
            master.start(timeout)
            return master

    def close_all(self) -> None:
        with self._lock:
            masters = list(self._masters.values())
            self._masters.clear()
        for master in masters:
            master.close()
