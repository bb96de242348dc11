"""One remote dataset opened end to end: sign in, start a server there (on the login
host or in a Slurm job), tunnel to it, open it; keep it alive; stop what we started.

The connect dialog, the tray's recent remotes and ``cellucid-desktop connect --open``
all drive ``RemoteOpen``, so they behave the same::

    plan = LaunchPlan(TunnelSpec("login"), "/data/pbmc.h5ad", env="module load python")
    opening = RemoteOpen(plan, masters=pool, on_status=print)
    view = opening.open()          # blocks; prompts go through the pool's PromptBroker
    ...                            # view.url in a window; statuses keep coming
    opening.close()                # stops the tunnel and, unless kept running, the server

Every step goes over the host's one signed-in master (``MasterPool``); nothing here
signs in twice or retries authentication without the user. What runs remotely is
built in ``remote_shell.py``; the server's start in ``server_launch.py``; the job's
life in ``slurm_job.py``; the tunnel, probe and proxy in ``session.py``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cellucid_desktop.remote import server_launch
from cellucid_desktop.remote.launch_choices import check_env_line, check_program, check_where
from cellucid_desktop.remote.master import Master, MasterPool
from cellucid_desktop.remote.server_launch import LaunchError, Started
from cellucid_desktop.remote.session import RemoteError, RemoteSession, RemoteView
from cellucid_desktop.remote.single_session import SingleSession
from cellucid_desktop.remote.slurm_job import SlurmOptions
from cellucid_desktop.remote.ssh_command import DEFAULT_REMOTE_PORT, HostSpec, SpecError, TunnelSpec
from cellucid_desktop.remote.ssh_process import SshError
from cellucid_desktop.remote.tunnel import TunnelState, TunnelStatus

log = logging.getLogger(__name__)

__all__ = ["LaunchPlan", "OpenStatus", "Phase", "RemoteError", "RemoteOpen", "SlurmOptions"]

RECORD_VERSION = 1


class Phase(str, enum.Enum):
    """What ``RemoteOpen`` is doing (``OpenStatus.phase`` is its value)."""

    SIGNING_IN = "signing-in"          # the master is signing in (prompts may show)
    FINDING_SERVER = "finding-server"  # running the environment line, looking for programs
    STARTING = "starting"              # the server was started; waiting for its banner
    QUEUED = "queued"                  # the Slurm job waits in the queue
    TUNNEL = "tunnel"                  # forwarding and probing the server
    CONNECTED = "connected"            # the view is ready (and while it stays so)
    RECONNECTING = "reconnecting"      # the tunnel is being restored (never re-prompts by itself)
    SERVER_STOPPED = "server-stopped"  # the server we started ended; detail["log_tail"]
    FAILED = "failed"                  # open() failed, or the connection cannot be restored
    STOPPED = "stopped"                # closed by the user


@dataclass(frozen=True)
class LaunchPlan:
    """What the user chose. ``tunnel`` gives the connection (target, jump hosts, key,
    options; its ``remote_port``/``remote_socket``/``node`` are not used: the server we
    start decides them). ``env`` is shell text run in the remote login shell before
    the server (the one value deliberately interpreted there, as the user's own
    ``.bashrc`` would be); every other value reaches the remote as a quoted word."""

    tunnel: TunnelSpec
    path: str
    where: str = "host"
    env: str = ""
    program: str = "auto"
    slurm: SlurmOptions | None = None
    keep_running: bool = False

    def validated(self) -> LaunchPlan:
        """A copy with every field checked; raises SpecError with a sentence."""
        path = self.path.strip()
        if not path:
            raise SpecError("Choose the dataset to open on the remote host")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
            raise SpecError(f"The remote path {path!r} contains control characters")
        check_where(self.where)
        check_program(self.program)
        env = check_env_line(self.env)
        slurm = (self.slurm or SlurmOptions()).validated() if self.where == "slurm" else None
        return replace(self, tunnel=replace(self.tunnel, node=None, remote_socket=None)
                       .validated(), path=path, env=env, slurm=slurm)

    def to_json(self) -> dict[str, Any]:
        """JSON for the control route and saved recents (no secrets in a plan)."""
        from dataclasses import asdict

        return {"tunnel": asdict(self.tunnel), "path": self.path, "where": self.where,
                "env": self.env, "program": self.program,
                "slurm": self.slurm.to_json() if self.slurm else None,
                "keep_running": self.keep_running}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LaunchPlan:
        """The plan ``to_json`` wrote, validated; SpecError/KeyError/TypeError if not."""
        from dataclasses import fields

        known = {f.name for f in fields(TunnelSpec)}
        tunnel = raw["tunnel"]
        spec = TunnelSpec(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in tunnel.items() if k in known})
        slurm = raw.get("slurm")
        return cls(spec, str(raw["path"]), str(raw.get("where") or "host"),
                   str(raw.get("env") or ""), str(raw.get("program") or "auto"),
                   SlurmOptions.from_json(slurm) if slurm is not None else None,
                   bool(raw.get("keep_running"))).validated()


@dataclass(frozen=True)
class OpenStatus:
    """One step of ``RemoteOpen``: ``phase`` (a ``Phase`` value), ``message`` (one
    sentence for the user) and ``detail``, e.g. ``{"job": "123", "queue_state":
    "PENDING", "reason": "Resources", "waiting_s": 42, "expected_start": "...",
    "node": "c042", "log_tail": [...], "server": "cellucid-desktop 0.1.0",
    "problem": "server-not-found"}``."""

    phase: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


class RemoteOpen:
    """Opens ``plan`` (see the module docstring). ``on_status`` gets every
    ``OpenStatus`` from a worker thread; ``status`` is the latest. ``close()`` is safe
    from any thread, twice, and while ``open()`` runs (which then raises)."""

    def __init__(self, plan: LaunchPlan, *, masters: MasterPool,
                 on_status: Callable[[OpenStatus], None] | None = None,
                 viewer: str = "builtin") -> None:
        self.plan = plan.validated()
        self.masters = masters
        self.on_status = on_status
        self.viewer = viewer
        self.session: RemoteSession | None = None
        self.started: Started | None = None
        self._holder: SingleSession | None = None  # the fallback's attached session
        self._status = OpenStatus(Phase.STOPPED.value, "Not started")
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._stopped_server = False

    @property
    def host(self) -> str:
        return self.plan.tunnel.target

    # -- open ------------------------------------------------------------------------

    def open(self) -> RemoteView:
        """Sign in (or reuse the host's master), start the server (or submit the job
        and wait for it), tunnel, probe, and return the view. Raises ``RemoteError``
        with one sentence; everything started so far is stopped again (a server the
        plan keeps running stays)."""
        try:
            if not self.masters.multiplexing:
                self.started = self._start_attached()
            else:
                master = self._master()
                if self.started is None:
                    self.started = self._start(master)
                else:
                    self._check_kept(master)
            view = self._tunnel()
        except RemoteError as exc:
            detail = dict(getattr(exc, "detail", {}))
            self._set(Phase.FAILED, str(exc), **detail)
            self.close()
            raise
        except BaseException:
            self.close()
            raise
        where = f"Slurm job {self.started.job} on {self.started.node} via {self.host}" \
            if self.started.job else self.host
        extra = {}
        if self.started.job and self.started.token is None:
            extra["warning"] = (f"cellucid serve has no access token: while the job runs, "
                                f"anyone who can reach {self.started.node} can read this "
                                "dataset. Install cellucid-desktop there to protect it.")
        self._set(Phase.CONNECTED, f"Connected to {self.started.path} on {where}.",
                  server=self.started.name, url=view.url, node=self.started.node,
                  job=self.started.job, **extra)
        return view

    def _master(self) -> Master:
        self._set(Phase.SIGNING_IN, f"Signing in to {self.host}...")
        try:
            return self.masters.get(self.plan.tunnel.host)
        except SshError as exc:
            raise RemoteError(exc.problem.message) from exc

    def _start_attached(self) -> Started:
        """Without multiplexing: one session starts the server and holds it (asked
        once for it; the tunnel's own session asks once more)."""
        if self.started is not None or self.plan.where == "slurm":
            raise RemoteError("Reattaching and Slurm jobs need an ssh client that can share "
                              "one sign-in (OpenSSH with ControlMaster); this one cannot.")
        self._set(Phase.SIGNING_IN, f"Signing in to {self.host}...")
        try:
            started, self._holder = server_launch.start_attached(
                self.masters, self.plan.tunnel.host, path=self.plan.path, env=self.plan.env,
                program=self.plan.program, keep=self.plan.keep_running,
                on_reply=self._on_reply(time.monotonic()), cancelled=self._cancelled)
        except LaunchError as exc:
            if self._cancelled.is_set():
                raise RemoteError("Disconnected.") from exc
            raise
        return started

    def _start(self, master: Master) -> Started:
        self._set(Phase.FINDING_SERVER, f"Looking for the server program on {self.host}...")
        sbatch = (self.plan.slurm or SlurmOptions()).sbatch_args() \
            if self.plan.where == "slurm" else None
        try:
            return server_launch.start(master, path=self.plan.path, env=self.plan.env,
                                       program=self.plan.program, sbatch_args=sbatch,
                                       on_reply=self._on_reply(time.monotonic()),
                                       cancelled=self._cancelled)
        except LaunchError as exc:
            if self._cancelled.is_set():
                raise RemoteError("Disconnected.") from exc
            raise

    def _on_reply(self, began: float) -> Callable[[str, str], None]:
        """The launch script's replies as statuses (``began``: when it was started)."""

        def on_reply(key: str, value: str) -> None:
            if self._cancelled.is_set():
                return
            if key == "program":
                self._set(Phase.FINDING_SERVER, f"Found {value} on {self.host}.", server=value)
            elif key == "pid":
                self._set(Phase.STARTING, f"Starting the server on {self.host}...", pid=value)
            elif key == "job":
                self._set(Phase.QUEUED, f"Submitted Slurm job {value} on {self.host}.",
                          job=value)
            elif key == "queue":
                message, detail = _queue_status(value, self._status.detail.get("job"),
                                                time.monotonic() - began)
                if message != self._status.message:
                    self._set(Phase.QUEUED, message, **detail)
        return on_reply

    def _check_kept(self, master: Master) -> None:
        """A server kept running earlier: still there? Then read its token."""
        assert self.started is not None
        self._set(Phase.FINDING_SERVER, f"Checking the server kept running on {self.host}...")
        reply = server_launch.check(master, self.started, self.plan.env)
        queue = (reply.get("queue") or "").split("|")[0]
        if reply.get("alive") != "1" and queue != "RUNNING":
            tail = reply.all.get("log", [])
            said = server_launch.last_words(tail)
            raise LaunchError(f"The server kept running on {self.host} has stopped"
                              f"{': ' + said if said else ''}.",
                              problem="server-stopped", log_tail=tail)
        if self.started.token_file:
            token = reply.get("token")
            if not token:
                raise LaunchError(f"The token file of the server on {self.host} is gone; "
                                  "it cannot be reattached.", problem="no-token")
            self.started = replace(self.started, token=token)

    def _tunnel(self) -> RemoteView:
        started = self.started
        assert started is not None
        spec = replace(self.plan.tunnel, remote_socket=started.socket,
                       remote_port=started.port or DEFAULT_REMOTE_PORT,
                       node=started.node, local_port=self.plan.tunnel.local_port)
        self._set(Phase.TUNNEL, f"Forwarding to the server on {self.host}...")
        with self._lock:
            if self._cancelled.is_set():
                raise RemoteError("Disconnected.")
            self.session = RemoteSession(spec, masters=self.masters, token=started.token,
                                         viewer=self.viewer, on_status=self._tunnel_status)
        return self.session.open()

    def _tunnel_status(self, status: TunnelStatus) -> None:
        """The tunnel's news, said as this opening's phases; a forward that finds
        nothing listening any more means the server stopped: say so with its log."""
        if self._cancelled.is_set() or self._status.phase not in (
                Phase.CONNECTED.value, Phase.RECONNECTING.value):
            return
        if status.state is TunnelState.RECONNECTING:
            self._set(Phase.RECONNECTING, status.message)
        elif status.state is TunnelState.CONNECTED:
            self._set(Phase.CONNECTED, status.message)
        elif status.state is TunnelState.FAILED:
            if status.problem is not None and status.problem.kind == "nothing-listening":
                threading.Thread(target=self._report_stopped, daemon=True).start()
            else:
                self._set(Phase.FAILED, status.message)

    def _report_stopped(self) -> None:
        tail: list[str] = []
        if self._holder is None:  # (the fallback has no master to read the log with)
            try:  # (a master the tunnel discarded is out of the pool: this one is live)
                master = self.masters.get(self.plan.tunnel.host)
                assert self.started is not None
                tail = server_launch.check(master, self.started,
                                           self.plan.env).all.get("log", [])
            except (RemoteError, SshError) as exc:
                log.warning("could not read the log of the server on %s: %s", self.host, exc)
        last = server_launch.last_words(tail)
        where = self.started.log if self.started else "its log"
        self._set(Phase.SERVER_STOPPED, f"The server on {self.host} stopped"
                  f"{': ' + last if last else ''} (log: {where}).", log_tail=tail)

    # -- close -----------------------------------------------------------------------

    def close(self, stop_server: bool | None = None) -> None:
        """Stop the tunnel and proxy; stop the server (``scancel`` the job, or kill the
        server's PID) if ``stop_server``, or, when None, unless ``plan.keep_running``."""
        self._cancelled.set()
        with self._lock:
            session, self.session = self.session, None
        if session is not None:
            session.close()
        if stop_server is None:
            stop_server = not self.plan.keep_running
        if self._holder is not None:
            # The attached session holds the server: ending it stops the server, unless
            # the plan keeps it (the launch script was told so when it started).
            self._holder.close()
        elif stop_server and self.started is not None and not self._stopped_server:
            self._stopped_server = True
            try:
                master = self.masters.get(self.plan.tunnel.host)
                server_launch.stop(master, self.started, self.plan.env)
            except (RemoteError, SshError) as exc:
                log.warning("could not stop the server on %s: %s", self.host, exc)
        if self._status.phase not in (Phase.FAILED.value, Phase.SERVER_STOPPED.value):
            self._set(Phase.STOPPED, "Disconnected." + (
                "" if stop_server or self.started is None else
                f" The server on {self.host} keeps running."))

    # -- state -----------------------------------------------------------------------

    def _set(self, phase: Phase, message: str, **detail: Any) -> None:
        if phase is not Phase.STOPPED and self._status.phase == Phase.STOPPED.value \
                and self._cancelled.is_set():
            return
        self._status = OpenStatus(phase.value, message, detail)
        log.info("remote open %s: [%s] %s", self.host, phase.value, message)
        if self.on_status is not None:
            try:
                self.on_status(self._status)
            except Exception:  # a front end's bug must not stop the opening
                log.exception("on_status failed")

    @property
    def status(self) -> OpenStatus:
        """The latest status."""
        return self._status

    @property
    def record(self) -> dict[str, Any]:
        """How to find the server again (JSON-able, no secrets): ``{"version", "host"
        (the HostSpec fields), "path", "where", "program", "env", "job", "node", "pid",
        "socket", "port", "token_file", "log", "run_dir", "started"}``. Empty until the
        server has started."""
        s = self.started
        if s is None:
            return {}
        return {"version": RECORD_VERSION, "host": self.plan.tunnel.host.to_json(),
                "path": s.path, "where": self.plan.where, "program": s.program,
                "name": s.name, "env": self.plan.env, "job": s.job, "node": s.node,
                "pid": s.pid, "socket": s.socket, "port": s.port,
                "token_file": s.token_file, "log": s.log, "run_dir": s.run_dir,
                "started": s.started}

    @classmethod
    def reattach(cls, record: dict[str, Any], *, masters: MasterPool,
                 on_status: Callable[[OpenStatus], None] | None = None,
                 viewer: str = "builtin") -> RemoteOpen:
        """A ``RemoteOpen`` for a server kept running earlier (``record``); its
        ``open()`` signs in, checks the server (or job) is still there, reads the token
        from its file over the master, and tunnels to it. It keeps running on
        ``close()`` unless ``close(stop_server=True)``. Raises SpecError for a record
        this version cannot read."""
        if record.get("version") != RECORD_VERSION:
            raise SpecError("This saved remote server was recorded by another version; "
                            "open the file again.")
        try:
            plan = LaunchPlan(TunnelSpec.on(HostSpec.from_json(record["host"])),
                              str(record["path"]), str(record.get("where") or "host"),
                              str(record.get("env") or ""), keep_running=True)
            started = Started(program=str(record["program"]), name=str(record["name"]),
                              path=str(record["path"]), run_dir=str(record["run_dir"]),
                              pid=record.get("pid"), job=record.get("job"),
                              socket=record.get("socket"), port=record.get("port"),
                              node=record.get("node"), started=float(record["started"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"This saved remote server cannot be read ({exc}).") from exc
        opening = cls(plan, masters=masters, on_status=on_status, viewer=viewer)
        opening.started = started
        return opening


def _queue_status(line: str, job: object, waited: float) -> tuple[str, dict[str, Any]]:
    """``squeue``'s ``STATE|REASON|NODES|START`` as a sentence and details."""
    state, reason, node, start = (line.split("|") + ["", "", "", ""])[:4]
    reason = "" if reason in ("None", "(null)") else reason
    detail: dict[str, Any] = {"job": job, "queue_state": state, "reason": reason,
                              "waiting_s": round(waited), "node": node or None,
                              "expected_start": start if start not in ("", "N/A") else None}
    if state == "PENDING":
        when = f", expected to start {start}" if detail["expected_start"] else ""
        why = f" ({reason})" if reason else ""
        return (f"Job {job} is waiting in the queue{why}{when}; {round(waited)} s so "
                "far."), detail
    if state == "RUNNING":
        return f"Job {job} runs on {node}; waiting for the server to start.", detail
    return f"Job {job} is {state.lower()}.", detail
