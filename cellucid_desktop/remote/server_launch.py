"""Start, check and stop the server we run on a remote host, over its signed-in master.

Each step runs one script from ``remote_shell`` in the user's login shell (after their
environment line) and reads its ``Reply`` lines as they come, so progress (the queue
state of a Slurm job, the server still starting) reaches the user while it happens.
What the scripts say goes into ``Started`` (where the server listens and how to find it
again) or into a ``LaunchError`` with one sentence and the log's last lines.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cellucid_desktop.remote import remote_shell
from cellucid_desktop.remote.master import Master, MasterPool
from cellucid_desktop.remote.remote_shell import Reply
from cellucid_desktop.remote.session import RemoteError
from cellucid_desktop.remote.single_session import SingleSession
from cellucid_desktop.remote.ssh_command import HostSpec
from cellucid_desktop.remote.ssh_process import SshError

START_TIMEOUT = 120.0   # from the start to the banner (a big file is read lazily)
QUIET_TIMEOUT = 60.0    # a script that says nothing this long is stuck (a frozen link)
CHECK_TIMEOUT = 30.0    # status and stop scripts
OUTPUT_TIMEOUT = 5.0    # at most this to read an ended script's last lines (ssh exited)
SSH_FAILED = 255        # ssh's exit status for its own failures (our scripts exit 0)
INSTALL = ("python3 -m pip install --user cellucid-desktop  (preferred; or the "
           "reference server: python3 -m pip install --user cellucid)")


class LaunchError(RemoteError):
    """The server could not be started (or checked); ``str()`` is one sentence,
    ``detail`` has ``problem`` and, where there is one, ``log_tail``."""

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Started:
    """A server we started: ``name`` is "cellucid-desktop" or "cellucid"; it listens on
    ``socket`` or ``port`` (on ``node`` for a Slurm job, else the host's loopback)."""

    program: str
    name: str
    path: str
    run_dir: str
    pid: int | None = None
    job: str | None = None
    socket: str | None = None
    port: int | None = None
    node: str | None = None
    token: str | None = None
    offline: bool = False
    started: float = field(default_factory=time.time)

    @property
    def log(self) -> str:
        return f"{self.run_dir}/server.log"

    @property
    def token_file(self) -> str | None:
        return f"{self.run_dir}/token" if self.name == "cellucid-desktop" else None


def programs_for(program: str) -> list[str]:
    """Which programs to look for, in order: ours is preferred (a token, a socket)."""
    return ["cellucid-desktop", "cellucid"] if program == "auto" else [program]


def run_script(master: Master, env: str, script: bytes, *,
               on_reply: Callable[[str, str], None] | None = None,
               cancelled: threading.Event | None = None,
               timeout: float = CHECK_TIMEOUT, marker: str) -> Reply:
    """Run ``script`` in the login shell after ``env``; call ``on_reply(key, value)`` for
    each reply as it comes. Raises ``LaunchError`` when the connection fails, the script
    says nothing for ``QUIET_TIMEOUT`` s (or ends nothing within ``timeout``), or
    ``cancelled`` is set."""
    try:
        command = master.start_command(remote_shell.in_login_shell(env), input=script)
    except SshError as exc:
        raise LaunchError(exc.problem.message, problem=exc.problem.kind) from exc
    reply = Reply()
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    try:
        for line in command.lines(0.25):
            now = time.monotonic()
            if cancelled is not None and cancelled.is_set():
                raise LaunchError("Cancelled.", problem="cancelled")
            if line is None and now - quiet_since > QUIET_TIMEOUT:
                raise LaunchError(f"{master.host.target} stopped answering while the "
                                  "server was being started; try again.",
                                  problem="no-answer")
            if now > deadline:  # still talking, but never done (a script that loops)
                raise LaunchError(f"The remote command on {master.host.target} did not "
                                  f"finish within {timeout:g} s; try again.",
                                  problem="too-slow")
            if line is None:
                continue
            quiet_since = now
            parsed = remote_shell.parse_line(marker, line)
            if parsed is None:
                continue
            reply.add(*parsed)
            if on_reply is not None:
                on_reply(*parsed)
    finally:
        command.stop()
    if command.returncode == SSH_FAILED:
        # ssh itself failed (the master went away mid-way): what came is partial, e.g.
        # a status without its log lines. Never taken as the whole answer.
        raise LaunchError(f"The connection to {master.host.target} ended while a remote "
                          "command ran; try again.", problem="connection-lost")
    if not reply.values and command.returncode not in (0, None):
        said = command.stderr.strip().splitlines()
        raise LaunchError(f"The remote shell on {master.host.target} failed"
                          f"{': ' + said[-1] if said else ''}. Check the environment "
                          "line (it runs before the server).", problem="shell-failed",
                          log_tail=said[-20:])
    return reply


def _script_values(path: str, program: str) -> dict[str, Any]:
    ident, name = remote_shell.dataset_identity(path)
    return dict(path=path, programs=programs_for(program), token=secrets.token_urlsafe(32),
                dataset_id=ident, dataset_name=name)


def _started(reply: Reply, path: str, token: str, slurm: bool) -> Started:
    found = reply.get("program") or ""
    name_found = found.rsplit("/", 1)[-1]
    sock, banner_port, bound = remote_shell.banner_endpoint(reply.all.get("banner", []))
    pid = reply.get("pid")
    return Started(program=found, name=name_found, path=reply.get("path") or path,
                   run_dir=reply.get("run") or "", pid=int(pid) if pid else None,
                   job=reply.get("job"), socket=sock, port=banner_port,
                   node=bound if slurm else None,
                   token=token if name_found == "cellucid-desktop" else None,
                   offline=reply.has("offline"))


def start_attached(pool: MasterPool, host: HostSpec, *, path: str, env: str, program: str,
                   keep: bool, on_reply: Callable[[str, str], None] | None = None,
                   cancelled: threading.Event | None = None
                   ) -> tuple[Started, SingleSession]:
    """The fallback without a master: one ``SingleSession`` (one sign-in) runs the
    launch script and stays attached; closing it stops the server unless ``keep``.
    Returns the server and that session (the caller closes it)."""
    marker = remote_shell.new_marker()
    values = _script_values(path, program)
    reply = Reply()
    ready = threading.Event()

    def on_output(line: str) -> None:
        parsed = remote_shell.parse_line(marker, line)
        if parsed is None:
            return
        reply.add(*parsed)
        if parsed[0] == "ready":
            ready.set()
        if on_reply is not None:
            on_reply(*parsed)

    session = SingleSession(host, pool.broker, forwards=(),
                            command=remote_shell.in_login_shell(env), ssh=pool.ssh,
                            on_output=on_output)
    try:
        session.start()
    except SshError as exc:
        raise LaunchError(exc.problem.message, problem=exc.problem.kind) from exc
    try:
        session.send(remote_shell.launch_script(marker, hold=True, keep=keep, **values))
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.wait(0.25) and session.alive:
            if cancelled is not None and cancelled.is_set():
                raise LaunchError("Cancelled.", problem="cancelled")
            if time.monotonic() > deadline:
                raise LaunchError(f"The server on {host.target} did not start within "
                                  f"{START_TIMEOUT:g} s.", problem="no-banner")
        if not ready.is_set():
            session.wait_output(OUTPUT_TIMEOUT)  # the script ended: its last lines (the log)
            _raise_for(reply, host.target, path, program)
    except (LaunchError, OSError) as exc:
        session.close()
        if isinstance(exc, OSError):
            raise LaunchError(f"The connection to {host.target} ended while the server "
                              "was being started.", problem="no-answer") from exc
        raise
    return _started(reply, path, values["token"], slurm=False), session


def start(master: Master, *, path: str, env: str, program: str, port: int | None = None,
          sbatch_args: Sequence[str] | None = None,
          on_reply: Callable[[str, str], None] | None = None,
          cancelled: threading.Event | None = None) -> Started:
    """Find the program, start the server detached on the host (``sbatch_args`` None)
    or submit it as a Slurm job, and wait until it prints its banner. ``port`` None:
    ours on a Unix socket, cellucid on a free port it picks."""
    marker = remote_shell.new_marker()
    common = _script_values(path, program)
    if sbatch_args is None:
        script = remote_shell.launch_script(marker, port=port, **common)
        timeout = START_TIMEOUT
    else:
        script = remote_shell.slurm_script(marker, sbatch_args=sbatch_args, **common)
        timeout = float("inf")  # the queue decides; progress keeps coming meanwhile
    try:
        reply = run_script(master, env, script, on_reply=on_reply, cancelled=cancelled,
                           timeout=timeout, marker=marker)
    except LaunchError as exc:
        if exc.detail.get("problem") != "too-slow":
            raise
        raise LaunchError(f"The server on {master.host.target} did not start within "
                          f"{timeout:g} s.", problem="no-banner") from exc
    _raise_for(reply, master.host.target, path, program)
    return _started(reply, path, common["token"], slurm=sbatch_args is not None)


def _raise_for(reply: Reply, host: str, path: str, program: str) -> None:
    """The script's failure as a ``LaunchError`` with one sentence (None if it worked)."""
    log_tail = reply.all.get("log", [])
    if reply.has("missing"):
        wanted = " or ".join(programs_for(program))
        raise LaunchError(f"{wanted} was not found on {host} (PATH={reply.get('missing')}). "
                          f"Install it there: {INSTALL}; or give the environment line that "
                          "makes it available (e.g. module load python; source "
                          "~/venv/bin/activate).", problem="server-not-found")
    if reply.has("no-data"):
        raise LaunchError(f"{host} has no file or folder {reply.get('no-data')}; check "
                          "the path.", problem="no-data")
    if reply.has("unreadable"):
        raise LaunchError(f"{reply.get('unreadable')} on {host} cannot be read by your "
                          "user there.", problem="unreadable")
    if reply.has("no-run-dir"):
        raise LaunchError(f"Could not make the private folder {reply.get('no-run-dir')} "
                          f"on {host} (is the home folder full or read-only?).",
                          problem="no-run-dir")
    if reply.has("sbatch-failed"):
        said = log_tail[-1] if log_tail else "no reason given"
        raise LaunchError(f"Slurm refused the job on {host}: {said}", problem="sbatch-failed",
                          log_tail=log_tail)
    if reply.has("died") or reply.has("ended"):
        said = last_words(log_tail)
        raise LaunchError(f"The server on {host} stopped before it was ready"
                          f"{': ' + said if said else ''}. Its log is "
                          f"{reply.get('run', '~/' + remote_shell.RUN_BASE)}/server.log.",
                          problem="server-died", log_tail=log_tail,
                          run_dir=reply.get("run"))
    if not reply.has("ready"):
        raise LaunchError(f"The server on {host} did not start (no banner); its log: "
                          f"{reply.get('run', '?')}/server.log.", problem="no-banner",
                          log_tail=log_tail)


def last_words(log_tail: Sequence[str]) -> str:
    """What the server said last: the last line with words after its banner (a server
    ended by a signal says nothing more: ""), or before any banner."""
    borders = [i for i, line in enumerate(log_tail)
               if line.strip() and not any(ch.isalnum() for ch in line)]
    after = log_tail[borders[-1] + 1:] if borders else log_tail
    return next((line.strip() for line in reversed(after)
                 if any(ch.isalnum() for ch in line)), "")


def check(master: Master, started: Started, env: str = "") -> Reply:
    """Is the server still there (``alive`` "1"/"0", ``queue`` for a job), its token
    (read from its file) and its log's last lines (``log``)."""
    marker = remote_shell.new_marker()
    script = remote_shell.status_script(marker, pid=started.pid, run=started.run_dir,
                                        path=started.path, job=started.job,
                                        token_file=started.token_file)
    return run_script(master, env, script, marker=marker)


def stop(master: Master, started: Started, env: str = "") -> Reply:
    """``scancel`` the job, or end the server's PID if it still is ours."""
    marker = remote_shell.new_marker()
    script = remote_shell.stop_script(marker, pid=started.pid, run=started.run_dir,
                                      path=started.path, job=started.job)
    return run_script(master, env, script, marker=marker)
