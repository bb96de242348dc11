"""The keys of a Zarr store folder on a remote Cellucid server, one HTTP GET each.

cellucid 0.9.5 (and our server) publish a store folder as ``<url>/<key>``: a key's bytes,
or 404 for a key the store does not hold (a chunk never written), and consolidated
metadata even where the store lacks it. zarr reads a remote store through this (via
data/zarr_store.KeyStore), one chunk per request, over the tunnel's kept-alive
connections (an http_client.Client, which names the remote's port in ``Host`` and
sends its access token).
"""

from __future__ import annotations

import threading
from urllib.parse import quote

from cellucid_desktop.http_client import Client
from cellucid_desktop.remote.range_file import RemoteFileError
from cellucid_desktop.remote.traffic import charge


class RemoteKeys:
    """``read(key)`` returns the key's bytes or None; ``bytes_fetched`` counts them."""

    def __init__(self, upstream: Client, route: str) -> None:
        self._upstream = upstream
        self._route = "/" + route.strip("/") + "/"
        self._lock = threading.Lock()
        self.bytes_fetched = 0
        self.requests = 0

    def read(self, key: str) -> bytes | None:
        target = self._route + quote(key, safe="/")
        try:
            resp = self._upstream.get(target)
        except OSError as exc:
            raise RemoteFileError(f"reading {key} from the remote store failed ({exc}); check "
                                  "that the tunnel and the server are running") from None
        body = resp.body
        with self._lock:
            self.requests += 1
            self.bytes_fetched += len(body)
        charge(len(body))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RemoteFileError(f"reading {key} from the remote store failed "
                                  f"(HTTP {resp.status})")
        return body
