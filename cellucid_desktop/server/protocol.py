"""The Cellucid protocol, 0.9.5 generation: the identity routes (the raw store is
answered before Flask by server/store.py).

Answers match `cellucid serve` 0.9.5 byte for byte where a client can tell (JSON keys,
separators, content types, statuses); docs/protocol.md lists what we do differently
on purpose (several datasets, version string, no viewer WebSocket).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, request

from cellucid_desktop import __version__
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.server.context import server_context
from cellucid_desktop.server.registry import Dataset
from cellucid_desktop.server.store import ANNDATA_PREFIX, text_response

bp = Blueprint("cellucid_protocol", __name__)

# cellucid matches paths exactly: no trailing-slash leniency, no merging of "//".
EXACT = {"strict_slashes": True, "merge_slashes": False}

# The viewer-channel capability list, as cellucid 0.9.5 publishes it.
PROTOCOL_DOCUMENT = {
    "channel": "_cellucid/ws",
    "commands": ["clearHighlights", "debug_snapshot", "freeze", "highlight", "ping",
                 "requestSessionBundle", "resetCamera", "setColorBy", "setDataMapping",
                 "setVisibility"],
    "binaryCommands": ["highlight", "setVisibility"],
    "events": ["click", "command_error", "data_mapping", "debug_snapshot", "hover", "pong",
               "ready", "selection", "session_bundle"],
}


def json_response(document: dict) -> Response:
    """JSON exactly as cellucid writes it: json.dumps defaults, no charset."""
    return Response(json.dumps(document), content_type="application/json")


def _first() -> tuple[str, int | None, int | None]:
    """The format and counts health/info report: the first dataset's as its file is now,
    as cellucid reports its one dataset (null counts for formats it leaves to the
    browser, such as loom, and for a file no longer usable: the data API says why)."""
    registry = server_context().registry
    datasets = registry.all()
    if not datasets:
        return "h5ad", None, None
    try:
        first = registry.refresh(datasets[0])
    except DatasetError:
        first = datasets[0]
        return first.source.kind, None, None
    published = first.source.publication()
    counts = published.counts if published else None
    n_cells, n_genes = counts if counts is not None else (first.meta.n_cells,
                                                          first.meta.n_genes)
    return (published.kind if published else first.source.kind), n_cells, n_genes


@bp.get("/_cellucid/health", **EXACT)
def health() -> Response:
    kind, n_cells, n_genes = _first()
    return json_response({"status": "ok", "type": "anndata", "version": __version__,
                          "format": kind, "n_cells": n_cells, "n_genes": n_genes})


@bp.get("/_cellucid/info", **EXACT)
def info() -> Response:
    ctx = server_context()
    kind, n_cells, n_genes = _first()
    return json_response({"version": __version__, "type": "anndata", "format": kind,
                          "host": ctx.bind_host, "port": ctx.port(), "n_cells": n_cells,
                          "n_genes": n_genes, "runtime": ctx.runtime})


def dataset_entry(dataset: Dataset) -> dict | None:
    """One `/_cellucid/datasets` entry; the URL names the id, never the local file.
    A folder's URL ends in ``/`` and has no size; None for a source we do not publish."""
    published = dataset.source.publication()
    if published is None:
        return None
    file: dict = {"url": ANNDATA_PREFIX + dataset.route_name, "kind": published.kind,
                  "layout": published.layout}
    if published.layout == "folder":
        file["url"] += "/"
    else:
        try:
            file["size"] = dataset.source.size() or 0
        except DatasetError:
            file["size"] = 0
    return {"id": dataset.id, "name": dataset.name,
            "anndata": {"file": file, "defaults": dict(published.defaults)}}


@bp.get("/_cellucid/datasets", **EXACT)
def datasets() -> Response:
    entries = (dataset_entry(d) for d in server_context().registry.all())
    return json_response({"datasets": [e for e in entries if e is not None]})


@bp.get("/_cellucid/protocol", **EXACT)
def protocol() -> Response:
    return json_response(PROTOCOL_DOCUMENT)


@bp.get("/_cellucid/ws", **EXACT)
@bp.get("/_cellucid/ws", websocket=True, **EXACT)
def viewer_channel() -> Response:
    """A plain GET gets cellucid's 426; an upgrade attempt learns the channel is absent
    (waitress speaks plain HTTP; docs/protocol.md lists this difference)."""
    if request.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
        return text_response(501, "This server has no viewer channel (cellucid-desktop serve)")
    return text_response(426, "The viewer channel is a WebSocket: open it with new WebSocket(...)")
