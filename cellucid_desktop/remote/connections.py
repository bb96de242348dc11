"""Saved connections and recent remotes: ``connections.json`` in the config dir.

A saved connection is a named TunnelSpec (or an already forwarded port); recent
remotes are the last ones that connected, newest first, for the tray menu. Written
atomically through the settings module's helpers; nothing secret is stored (keys stay
where the user keeps them, only their path is remembered).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cellucid_desktop import paths
from cellucid_desktop.remote.ssh_command import SpecError, TunnelSpec
from cellucid_desktop.atomic_files import atomic_write_json, read_json

FILE_NAME = "connections.json"
MAX_RECENT = 10


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


class ConnectionStore:
    """Thread-safe access to saved and recent connections."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or paths.config_dir()) / FILE_NAME
        self._lock = threading.Lock()
        self.message: str | None = None  # set when the file had to be reset

    def _load(self) -> dict[str, list[dict[str, Any]]]:
        raw, message = read_json(self.path, {"saved": [], "recent": []})
        if message:
            self.message = message
        if not isinstance(raw, dict):
            return {"saved": [], "recent": []}
        return {key: [e for e in raw.get(key, []) if isinstance(e, dict)]
                for key in ("saved", "recent")}

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
