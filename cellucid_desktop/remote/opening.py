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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.session import RemoteError, RemoteView
from cellucid_desktop.remote.slurm_job import SlurmOptions
from cellucid_desktop.remote.ssh_command import SpecError, TunnelSpec

__all__ = ["LaunchPlan", "OpenStatus", "Phase", "RemoteError", "RemoteOpen", "SlurmOptions",
           "WHERE", "PROGRAMS"]

WHERE = ("host", "slurm")
PROGRAMS = ("auto", "cellucid-desktop", "cellucid")
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
        if self.where not in WHERE:
            raise SpecError(f"Where to run the server must be one of {', '.join(WHERE)}")
        if self.program not in PROGRAMS:
            raise SpecError(f"The server program must be one of {', '.join(PROGRAMS)}")
        if "\0" in self.env or "\n" in self.env.strip():
            raise SpecError("The environment line must be a single line, e.g. "
                            "module load python; source ~/venv/bin/activate")
        slurm = (self.slurm or SlurmOptions()).validated() if self.where == "slurm" else None
        return replace(self, tunnel=replace(self.tunnel, node=None, remote_socket=None)
                       .validated(), path=path, env=self.env.strip(), slurm=slurm)

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
        raise NotImplementedError

    def open(self) -> RemoteView:
        """Sign in (or reuse the host's master), start the server (or submit the job
        and wait for it), tunnel, probe, and return the view. Raises ``RemoteError``
        with one sentence; everything started so far is stopped again (a server the
        plan keeps running stays)."""
        raise NotImplementedError

    def close(self, stop_server: bool | None = None) -> None:
        """Stop the tunnel and proxy; stop the server (``scancel`` the job, or kill the
        server's PID) if ``stop_server``, or, when None, unless ``plan.keep_running``."""
        raise NotImplementedError

    @property
    def status(self) -> OpenStatus:
        """The latest status."""
        raise NotImplementedError

    @property
    def record(self) -> dict[str, Any]:
        """How to find the server again (JSON-able, no secrets): ``{"version", "host"
        (the HostSpec fields), "path", "where", "program", "env", "job", "node", "pid",
        "socket", "port", "token_file", "log", "run_dir", "started"}``. Empty until the
        server has started."""
        raise NotImplementedError

    @classmethod
    def reattach(cls, record: dict[str, Any], *, masters: MasterPool,
                 on_status: Callable[[OpenStatus], None] | None = None,
                 viewer: str = "builtin") -> RemoteOpen:
        """A ``RemoteOpen`` for a server kept running earlier (``record``); its
        ``open()`` signs in, checks the server (or job) is still there, reads the token
        from its file over the master, and tunnels to it. It keeps running on
        ``close()`` unless ``close(stop_server=True)``."""
        raise NotImplementedError
