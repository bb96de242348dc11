"""What answers on a local port: which Cellucid server (if any), and what it offers.

Follows docs/cellucid-protocol.md §5: health first (with the server's port in ``Host``;
a 421 means a port-remapping tunnel in front of cellucid 0.9.5, so ask again naming the
remote port), then the signals that tell the generations apart, then ``/`` for the UI.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from cellucid_desktop.http_client import Client, Endpoint, Reply
from cellucid_desktop.remote.ports import COMMON_PORTS

G2 = "cellucid-0.9.5"          # raw store, browser reads Range
G1_ANNDATA = "cellucid-0.9.0"  # virtual export files from AnnData
G1_EXPORT = "cellucid-0.9.0-export"
DESKTOP = "cellucid-desktop"    # our own `cellucid-desktop serve`
UNSUPPORTED = "cellucid-unsupported"  # answers health like Cellucid, nothing else fits
HOST_REFUSED = "host-refused"  # a 421 for every port we tried in Host
NOT_CELLUCID = "not-cellucid"
NOTHING = "nothing"             # no answer at all (nothing listening, or the tunnel's far
                                # end refused)

G2_HEALTH_KEYS = {"status", "type", "version", "format", "n_cells", "n_genes"}
TOKEN_MISSING = ("This cellucid-desktop server needs its access token: paste the Viewer "
                 "URL it printed (the part after ?token=), or give --token-file.")
TOKEN_REFUSED = ("The server refused the access token: copy it again from the Viewer URL "
                 "the server printed (it changes every time the server starts).")

__all__ = ["Reply", "fetch", "probe", "find_servers", "ProbeResult"]


def fetch(port: int, path: str, *, host_port: int | None = None, method: str = "GET",
          timeout: float = 2.0, limit: int = 1 << 20, token: str | None = None) -> Reply:
    """One request to 127.0.0.1:port naming ``host_port`` in Host; raises OSError."""
    endpoint = Endpoint(port=port, token=token).naming(host_port or port)
    with Client(endpoint, timeout=timeout) as client:
        return client.request(method, path, headers={"Accept": "*/*"}, limit=limit)


@dataclass
class ProbeResult:
    """``kind`` is one of the constants above; ``host_port`` is the port the remote
    expects in ``Host`` (differs from ``port`` behind a remapping tunnel)."""

    port: int
    kind: str
    host_port: int
    message: str
    version: str | None = None
    health: dict | None = None
    datasets: list[dict] = field(default_factory=list)
    has_ui: bool | None = None
    server: str = ""
    token: str | None = field(default=None, repr=False)  # the access token that worked
    token_problem: str = ""  # "", or the sentence: our server needs a (right) token

    @property
    def needs_token(self) -> bool:
        """Our server answered, but only health: it wants its access token."""
        return bool(self.token_problem)

    @property
    def is_cellucid(self) -> bool:
        return self.kind in (G2, G1_ANNDATA, G1_EXPORT, DESKTOP)

    @property
    def host_refused(self) -> bool:
        """The remote refuses our local port in Host (needs the proxy to be viewed)."""
        return self.host_port != self.port

    @property
    def viewer_path(self) -> str:
        """What to open on the server's base URL (§5 step 4)."""
        if self.kind == G1_EXPORT:
            return "/"
        if self.kind == DESKTOP and self.datasets:
            return f"/?dataset={self.datasets[0].get('id', '')}"
        return "/?anndata=true"

    @property
    def needs_proxy(self) -> bool:
        """Loading the remote directly would fail: 421 on our port, or no UI to load."""
        return self.is_cellucid and (self.host_refused or self.has_ui is False)


def probe(port: int, *, remote_port: int | None = None, timeout: float = 2.0,
          token: str | None = None) -> ProbeResult:
    """Classify what listens on 127.0.0.1:``port`` (see the module docstring).

    ``token`` is sent as ``Authorization: Bearer`` (our servers want it on every route
    but health; cellucid ignores it)."""
    try:
        reply = fetch(port, "/_cellucid/health", timeout=timeout)
        host_port = port
        if reply.status == 421:
            for candidate in _host_candidates(port, remote_port):
                again = fetch(port, "/_cellucid/health", host_port=candidate, timeout=timeout)
                if again.status != 421:
                    reply, host_port = again, candidate
                    break
    except OSError as exc:
        return ProbeResult(port, NOTHING, port, f"Nothing answered on local port {port} "
                           f"({_reason(exc)}).")
    server = reply.headers.get("server", "")
    if reply.status == 421:
        return ProbeResult(port, HOST_REFUSED, port, "A Cellucid server answered but refuses "
                           "this local port (it wants its own port in the Host header); give "
                           "the remote port, use the same local and remote port, or start it "
                           "with --allowed-host 127.0.0.1.", server=server)
    health = reply.json() if reply.status == 200 else None
    if not _is_cellucid_health(health):
        return ProbeResult(port, NOT_CELLUCID, host_port, f"Port {port} answers, but not as a "
                           f"Cellucid server (HTTP {reply.status}, {server or 'unknown server'}); "
                           "check the port number.", server=server)
    result = ProbeResult(port, UNSUPPORTED, host_port, "", version=str(health["version"]),
                         health=health, server=server, token=token)
    ask = _Asker(port, host_port, timeout, token)
    result.kind = _generation(ask, health, reply)
    try:
        listing = ask("/_cellucid/datasets")
    except OSError:
        listing = None
    if listing is not None and listing.status == 401 and result.kind == DESKTOP:
        result.token_problem = TOKEN_REFUSED if token else TOKEN_MISSING
        result.message = result.token_problem
        return result
    result.datasets = _datasets(listing)
    result.has_ui = _has_ui(ask)
    result.message = _describe(result)
    return result


def find_servers(ports: Iterable[int] = COMMON_PORTS, timeout: float = 0.5) -> list[ProbeResult]:
    """Cellucid servers already reachable on common local ports (already forwarded)."""
    found = []
    for port in ports:
        result = probe(port, timeout=timeout)
        if result.is_cellucid:
            found.append(result)
    return found


def _host_candidates(port: int, remote_port: int | None) -> list[int]:
    """Ports the remote may expect in Host: the one we were told, else the usual ones."""
    if remote_port is not None:
        return [remote_port] if remote_port != port else []
    return [p for p in COMMON_PORTS if p != port]


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(exc, ConnectionError):
        return "the connection was closed without an answer; through a tunnel this usually "\
               "means nothing listens on the remote port"
    return str(exc) or type(exc).__name__


def _is_cellucid_health(health: dict | None) -> bool:
    return bool(health) and health.get("status") == "ok" \
        and health.get("type") in ("anndata", "exported") \
        and isinstance(health.get("version"), str)


class _Asker:
    """GET one path of the probed server, naming ``host_port`` and sending the token."""

    def __init__(self, port: int, host_port: int, timeout: float, token: str | None) -> None:
        self.port, self.host_port, self.timeout, self.token = port, host_port, timeout, token

    def __call__(self, path: str, limit: int = 1 << 20) -> Reply:
        return fetch(self.port, path, host_port=self.host_port, timeout=self.timeout,
                     limit=limit, token=self.token)


def _generation(ask: _Asker, health: dict, reply: Reply) -> str:
    if reply.headers.get("server", "").startswith("cellucid-desktop/"):
        return DESKTOP
    if health.get("type") == "exported":
        return G1_EXPORT
    if "is_backed" in health:
        return G1_ANNDATA
    try:
        api = ask("/api/v1/datasets")
        if api.status == 200 and api.json() is not None:
            return DESKTOP
        protocol = ask("/_cellucid/protocol")
    except OSError:
        return UNSUPPORTED
    doc = protocol.json() if protocol.status == 200 else None
    if set(health) == G2_HEALTH_KEYS and doc and doc.get("channel") == "_cellucid/ws":
        return G2
    return G1_ANNDATA if reply.version == 10 else UNSUPPORTED


def _datasets(listing: Reply | None) -> list[dict]:
    entries = ((listing.json() if listing is not None else None) or {}).get("datasets")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _has_ui(ask: _Asker) -> bool | None:
    """GET / : 200 HTML = a viewer UI; 503 = started with --no-web-ui."""
    try:
        reply = ask("/", limit=4096)
    except OSError:
        return None
    if reply.status == 200 and "html" in reply.headers.get("content-type", ""):
        return True
    return False if reply.status >= 400 else None


def _describe(result: ProbeResult) -> str:
    names = {G2: "cellucid serve", G1_ANNDATA: "cellucid serve (AnnData)",
             G1_EXPORT: "cellucid serve (export folder)", DESKTOP: "cellucid-desktop serve"}
    name = names.get(result.kind)
    if name is None:
        return (f"Port {result.port} answers like Cellucid {result.version}, a version this "
                "app does not support; update the server to cellucid 0.9.5.")
    dataset = result.datasets[0].get("name", "?") if result.datasets else "no dataset"
    ui = {True: "with viewer UI", False: "without viewer UI", None: "UI unknown"}[result.has_ui]
    return f"{name} {result.version}: {dataset}, {ui}"
