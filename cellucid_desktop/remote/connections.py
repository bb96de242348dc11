"""Saved connections, recent remotes and what each host remembers: ``connections.json``
in the config dir.

A saved connection is a named TunnelSpec (or an already forwarded port); recent
remotes are the last ones that connected, newest first, for the tray menu. Per host
(``host_key``: target, jump hosts, port, as the user typed them) the store keeps a
``HostMemory`` (the environment line, the server program, where the server runs, the
Slurm options, the last folders browsed) and the recent remote files (``RemoteFile``,
with the reattach record of a server kept running). Written atomically through the
settings module's helpers; nothing secret is stored (keys stay where the user keeps
them, only their path is remembered; a kept server's token stays in its remote file).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from cellucid_desktop import paths
from cellucid_desktop.remote.launch_choices import check_env_line, check_program, check_where
from cellucid_desktop.remote.slurm_job import SlurmOptions
from cellucid_desktop.remote.ssh_command import HostSpec, SpecError, TunnelSpec
from cellucid_desktop.atomic_files import atomic_write_json, read_json

FILE_NAME = "connections.json"
MAX_RECENT = 10
MAX_FOLDERS = 8         # last folders browsed, per host
MAX_RECENT_FILES = 20   # recent remote files, all hosts together


@dataclass
class Connection:
    """``spec`` None = an already forwarded local ``port``."""

    name: str
    spec: TunnelSpec | None = None
    port: int | None = None
    last_used: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self.spec) if self.spec else None
        return {"name": self.name, "spec": spec, "port": self.port,
                "last_used": self.last_used, "extra": self.extra}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Connection:
        """Raises SpecError (or KeyError/TypeError) for an entry that no longer validates."""
        spec = raw.get("spec")
        known = {f.name for f in fields(TunnelSpec)}
        if spec is not None:
            spec = TunnelSpec(**{k: v for k, v in spec.items() if k in known}).validated()
        port = raw.get("port")
        if spec is None and not isinstance(port, int):
            raise SpecError("a connection needs an SSH target or a local port")
        return cls(str(raw["name"]), spec, port, float(raw.get("last_used", 0.0)),
                   dict(raw.get("extra") or {}))

    @property
    def describe(self) -> str:
        if self.spec is None:
            return f"127.0.0.1:{self.port} (already forwarded)"
        via = f" via {','.join(self.spec.jump)}" if self.spec.jump else ""
        node = f"{self.spec.node}:" if self.spec.node else ""
        return f"{self.spec.target}{via} -> {node}{self.spec.remote_port}"


def host_key(host: HostSpec) -> str:
    """How the store names a host: target, jump hosts and port as the user gave them
    (the key file and options may change without it becoming another host)."""
    spec = host.validated()
    via = f" via {','.join(spec.jump)}" if spec.jump else ""
    port = f":{spec.ssh_port}" if spec.ssh_port else ""
    return f"{spec.target}{port}{via}"


@dataclass(frozen=True)
class HostMemory:
    """What one host remembers: the environment line run before the server, the
    server program ("auto", "cellucid-desktop", "cellucid"), where it runs ("host" or
    "slurm"), the Slurm options, and the last folders browsed (newest first)."""

    env: str = ""
    program: str = "auto"
    where: str = "host"
    slurm: SlurmOptions = SlurmOptions()
    folders: tuple[str, ...] = ()

    def validated(self) -> HostMemory:
        check_program(self.program)
        check_where(self.where)
        return replace(self, env=check_env_line(self.env), slurm=self.slurm.validated())

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "program": self.program, "where": self.where,
                "slurm": self.slurm.to_json(), "folders": list(self.folders)}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> HostMemory:
        """Defaults for what is missing or no longer valid (edited by hand)."""
        raw = raw or {}
        folders = tuple(f for f in raw.get("folders") or () if isinstance(f, str))
        try:
            slurm = SlurmOptions.from_json(raw.get("slurm"))
        except (SpecError, TypeError, AttributeError):
            slurm = SlurmOptions()
        memory = cls(str(raw.get("env") or ""), str(raw.get("program") or "auto"),
                     str(raw.get("where") or "host"), slurm, folders[:MAX_FOLDERS])
        try:
            return memory.validated()
        except SpecError:
            return cls(folders=memory.folders)


@dataclass
class RemoteFile:
    """A remote dataset opened lately: on which host, where its server ran, and (when
    the user kept that server running) ``record``, what ``RemoteOpen.reattach`` needs."""

    host: HostSpec
    path: str
    where: str = "host"
    last_used: float = 0.0
    record: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return host_key(self.host), self.path

    @property
    def label(self) -> str:
        """``name — host`` (with "running" when a kept server can be reattached)."""
        name = self.path.rstrip("/").rsplit("/", 1)[-1] or self.path
        kept = " (running)" if self.record else ""
        return f"{name} \u2014 {host_key(self.host)}{kept}"

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host.to_json(), "path": self.path, "where": self.where,
                "last_used": self.last_used, "record": self.record}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RemoteFile:
        record = raw.get("record")
        return cls(HostSpec.from_json(raw["host"]), str(raw["path"]),
                   str(raw.get("where") or "host"), float(raw.get("last_used") or 0.0),
                   record if isinstance(record, dict) else None)


def _file_key(raw: dict[str, Any]) -> tuple[str, str] | None:
    try:
        return host_key(HostSpec.from_json(raw["host"])), str(raw["path"])
    except (SpecError, KeyError, TypeError, ValueError):
        return None


class ConnectionStore:
    """Thread-safe access to saved and recent connections."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or paths.config_dir()) / FILE_NAME
        self._lock = threading.Lock()
        self.message: str | None = None  # set when the file had to be reset

    def _load(self) -> dict[str, Any]:
        raw, message = read_json(self.path, {})
        if message:
            self.message = message
        if not isinstance(raw, dict):
            raw = {}
        data: dict[str, Any] = {key: [e for e in raw.get(key, []) if isinstance(e, dict)]
                                for key in ("saved", "recent", "files")}
        hosts = raw.get("hosts")
        data["hosts"] = {k: v for k, v in hosts.items() if isinstance(v, dict)} \
            if isinstance(hosts, dict) else {}
        return data

    def _entries(self, key: str) -> list[Connection]:
        found = []
        for raw in self._load()[key]:
            try:
                found.append(Connection.from_json(raw))
            except (SpecError, KeyError, TypeError, ValueError):
                continue  # an entry edited by hand into something unusable is skipped
        return found

    def saved(self) -> list[Connection]:
        with self._lock:
            return self._entries("saved")

    def recent(self) -> list[Connection]:
        with self._lock:
            return self._entries("recent")

    def get(self, name: str) -> Connection | None:
        return next((c for c in self.saved() if c.name == name), None)

    def save(self, connection: Connection) -> None:
        """Add or replace (by name) a saved connection."""
        if not connection.name.strip():
            raise SpecError("Give the connection a name")
        self._update("saved", connection, key=lambda c: c.name, limit=None)

    def delete(self, name: str) -> bool:
        with self._lock:
            data = self._load()
            kept = [e for e in data["saved"] if e.get("name") != name]
            if len(kept) == len(data["saved"]):
                return False
            data["saved"] = kept
            atomic_write_json(self.path, data)
            return True

    def note_used(self, connection: Connection) -> None:
        """Put a connection that just worked at the top of the recent list."""
        connection.last_used = time.time()
        self._update("recent", connection, key=lambda c: c.describe, limit=MAX_RECENT)

    def _update(self, which: str, connection: Connection, key: Any, limit: int | None) -> None:
        with self._lock:
            data = self._load()
            entries = [c for c in self._entries(which) if key(c) != key(connection)]
            entries.insert(0, connection)
            data[which] = [c.to_json() for c in entries[:limit]]
            atomic_write_json(self.path, data)

    # -- per host: what it remembers, and its recent files --------------------------------

    def host_memory(self, host: HostSpec) -> HostMemory:
        """What ``host`` remembers (defaults for a host never used)."""
        with self._lock:
            raw = self._load()["hosts"].get(host_key(host))
        return HostMemory.from_json(raw)

    def remember_host(self, host: HostSpec, *, env: str | None = None,
                      program: str | None = None, where: str | None = None,
                      slurm: SlurmOptions | None = None) -> HostMemory:
        """Keep the choices given (None = unchanged) for ``host``; SpecError if one
        does not validate (nothing is written then)."""
        def change(memory: HostMemory) -> HostMemory:
            return HostMemory(
                env=memory.env if env is None else env.strip(),
                program=memory.program if program is None else program,
                where=memory.where if where is None else where,
                slurm=memory.slurm if slurm is None else slurm.validated(),
                folders=memory.folders).validated()
        return self._change_host(host, change)

    def note_folder(self, host: HostSpec, folder: str) -> HostMemory:
        """Put ``folder`` first in ``host``'s last folders."""
        def change(memory: HostMemory) -> HostMemory:
            folders = [folder] + [f for f in memory.folders if f != folder]
            return replace(memory, folders=tuple(folders[:MAX_FOLDERS]))
        return self._change_host(host, change)

    def note_file(self, file: RemoteFile) -> None:
        """Put a remote file that was just opened first among the recent files (one
        entry per host and path; its record replaces an older one)."""
        file.last_used = file.last_used or time.time()
        with self._lock:
            data = self._load()
            kept = [raw for raw in data["files"] if _file_key(raw) != file.key]
            data["files"] = [file.to_json(), *kept][:MAX_RECENT_FILES]
            atomic_write_json(self.path, data)

    def recent_files(self, host: HostSpec | None = None) -> list[RemoteFile]:
        """Recent remote files, newest first (of one host, or of all)."""
        with self._lock:
            raws = self._load()["files"]
        files = []
        for raw in raws:
            try:
                file = RemoteFile.from_json(raw)
            except (SpecError, KeyError, TypeError, ValueError):
                continue  # an entry edited by hand into something unusable is skipped
            if host is None or host_key(file.host) == host_key(host):
                files.append(file)
        return files

    def forget_record(self, host: HostSpec, path: str) -> None:
        """The kept server of ``host``/``path`` is gone (stopped, or found ended): keep
        the file in the recent list without its reattach record."""
        key = (host_key(host), path)
        with self._lock:
            data = self._load()
            for raw in data["files"]:
                if _file_key(raw) == key:
                    raw["record"] = None
            atomic_write_json(self.path, data)

    def _change_host(self, host: HostSpec, change: Any) -> HostMemory:
        with self._lock:
            data = self._load()
            key = host_key(host)
            memory = change(HostMemory.from_json(data["hosts"].get(key)))
            data["hosts"][key] = memory.to_json()
            atomic_write_json(self.path, data)
            return memory


def spec_from_form(form: dict[str, Any]) -> TunnelSpec:
    """A validated spec from the connect dialog's fields (strings, as a form sends them).

    ``where`` is ``"host"`` (the server runs on the SSH target) or ``"node"``; empty
    ports mean the defaults; ``jump`` is comma-separated; ``options`` one per line;
    ``config_file`` (ssh -F) comes only from the command line.
    """
    def port(name: str, default: int | None) -> int | None:
        text = str(form.get(name) or "").strip()
        if not text:
            return default
        if not text.isdigit():
            raise SpecError(f"{name.replace('_', ' ').capitalize()} must be a number, "
                            f"not {text!r}")
        return int(text)

    node = str(form.get("node") or "").strip() if form.get("where") == "node" else ""
    if form.get("where") == "node" and not node:
        raise SpecError("Give the compute node's name (as the login host knows it)")
    jump = str(form.get("jump") or "").strip()
    options = [line for line in str(form.get("options") or "").splitlines() if line.strip()]
    return TunnelSpec(
        remote_socket=str(form.get("remote_socket") or "").strip() or None,
        target=str(form.get("target") or ""), remote_port=port("remote_port", 8765) or 8765,
        local_port=port("local_port", None), jump=(jump,) if jump else (),
        node=node or None, ssh_port=port("ssh_port", None),
        identity_file=str(form.get("identity_file") or "").strip() or None,
        options=tuple(options),
        config_file=str(form.get("config_file") or "").strip() or None).validated()


def form_from_spec(spec: TunnelSpec) -> dict[str, Any]:
    """The dialog's fields for a spec (what the command line hands to the running app)."""
    return {"mode": "ssh", "target": spec.target, "where": "node" if spec.node else "host",
            "node": spec.node or "", "remote_port": str(spec.remote_port),
            "local_port": "" if spec.local_port is None else str(spec.local_port),
            "jump": ",".join(spec.jump),
            "ssh_port": "" if spec.ssh_port is None else str(spec.ssh_port),
            "identity_file": spec.identity_file or "", "options": "\n".join(spec.options),
            "config_file": spec.config_file or "", "remote_socket": spec.remote_socket or ""}
