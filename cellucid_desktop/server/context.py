"""What every route needs to know about the running server, in one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from cellucid_desktop.server.registry import DatasetRegistry


@dataclass
class ServerContext:
    """Shared state of one server: its datasets and where it is bound."""

    registry: DatasetRegistry
    bind_host: str = "127.0.0.1"
    port: Callable[[], int | None] = lambda: 0  # None: a Unix socket
    allowed_hosts: tuple[str, ...] = ()
    runtime: str = "python"
    extras: dict[str, object] = field(default_factory=dict)


def server_context() -> ServerContext:
    """The ServerContext of the app handling the current request."""
    return current_app.extensions["cellucid"]
