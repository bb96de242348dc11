"""A stand-in for www.cellucid.com: a tiny threaded HTTP server on 127.0.0.1 that
publishes a generated web build (inventory + assets) and can misbehave on request."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

INVENTORY = "cellucid-web-assets.json"
JSON_UTF8 = "application/json; charset=utf-8"

# What the page does in the end-to-end test: read the datasets document of its own
# origin, then the first 8 bytes of the store with a Range request.
APP_JS = b"""\
const out = document.getElementById('out');
(async () => {
  const doc = await (await fetch('/_cellucid/datasets')).json();
  const file = doc.datasets[0].anndata.file;
  const res = await fetch('/' + file.url, {headers: {Range: 'bytes=0-7'}});
  const head = Array.from(new Uint8Array(await res.arrayBuffer()));
  out.textContent = JSON.stringify({ids: doc.datasets.map(d => d.id), status: res.status,
                                     range: res.headers.get('Content-Range'), head});
})().catch(err => { out.textContent = 'error: ' + err; });
"""


def index_html(build_id: str | None, marker: str = "") -> bytes:
    meta = f'<meta name="cellucid-web-build-id" content="{build_id}">' if build_id else ""
    return (f'<!doctype html><html><head><meta charset="utf-8">{meta}'
            f'<title>Cellucid {marker}</title><link rel="stylesheet" href="/assets/app.css">'
            f'</head><body><pre id="out">loading</pre>'
            f'<script type="module" src="/assets/app.js"></script></body></html>').encode()


@dataclass
class Reply:
    """One published file; the fault fields make the server lie about it."""

    body: bytes
    content_type: str
    content_length: int | None = None  # None: the true length
    send_bytes: int | None = None  # stop after this many bytes and close (truncation)
    redirect: str | None = None  # answer 302 to this URL instead
    delay: float = 0.0  # seconds to wait before answering (a slow network)


def make_build(build_id: str, *, marker: str = "", index_build_id: str | None = "same",
               css: bytes = b"body { background: #123; }\n",
               extra: dict[str, tuple[bytes, str]] | None = None) -> dict[str, Reply]:
    """index.html, a JS and a CSS file, and the inventory that vouches for them."""
    stamp = build_id if index_build_id == "same" else index_build_id
    files = {
        "index.html": (index_html(stamp, marker), "text/html; charset=utf-8"),
        "assets/app.js": (APP_JS + f"// {marker}\n".encode(), "text/javascript; charset=utf-8"),
        "assets/app.css": (css, "text/css; charset=utf-8"),
        **(extra or {}),
    }
    return publish(build_id, files)


def publish(build_id: str, files: dict[str, tuple[bytes, str]]) -> dict[str, Reply]:
    assets = [{"path": path, "sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body),
               "content_type": ctype} for path, (body, ctype) in sorted(files.items())]
    inventory = json.dumps({"version": 1, "build_id": build_id, "assets": assets}).encode()
    routes = {path: Reply(body, ctype) for path, (body, ctype) in files.items()}
    routes[INVENTORY] = Reply(inventory, JSON_UTF8)
    return routes


def inventory_of(routes: dict[str, Reply]) -> dict:
    return json.loads(routes[INVENTORY].body)


def set_inventory(routes: dict[str, Reply], document: dict) -> None:
    routes[INVENTORY] = Reply(json.dumps(document).encode(), JSON_UTF8)


@dataclass
class BuildSource:
    """The server; ``routes`` may be swapped or edited between fetches."""

    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def start(self) -> BuildSource:
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.lstrip("/")
                source.requests.append(path)
                reply = source.routes.get(path)
                if reply is None:
                    self.send_error(404)
                    return
                time.sleep(reply.delay)
                if reply.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", reply.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", reply.content_type)
                length = len(reply.body) if reply.content_length is None else reply.content_length
                self.send_header("Content-Length", str(length))
                self.end_headers()
                body = reply.body if reply.send_bytes is None else reply.body[:reply.send_bytes]
                self.wfile.write(body)
                self.wfile.flush()
                if reply.send_bytes is not None:
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
