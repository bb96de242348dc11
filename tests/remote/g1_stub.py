"""A stand-in for cellucid 0.9.0 (G1), which cannot be installed here: a single-threaded
HTTP/1.0 stdlib server answering the identity routes with the exact example responses
of docs/cellucid-protocol.md §1.2 (AnnData mode) and §1.3 (export-folder mode)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

ANNDATA = {
    "/_cellucid/health": b'{"status":"ok","type":"anndata","version":"0.9.0","format":"h5ad",'
                         b'"is_backed":true,"n_cells":200,"n_genes":50}',
    "/_cellucid/info": b'{"version":"0.9.0","type":"anndata","format":"h5ad","host":'
                       b'"127.0.0.1","port":18790,"n_cells":200,"n_genes":50,"is_backed":true}',
    "/_cellucid/datasets": b'{"datasets":[{"id":"test","path":"/","name":"test"}]}',
}
EXPORT = {
    "/_cellucid/health": b'{"status":"ok","type":"exported","version":"0.9.0"}',
    "/_cellucid/info": b'{"version":"0.9.0","host":"127.0.0.1","port":18791,'
                       b'"mode":"standalone"}',
    "/_cellucid/datasets": b'{"datasets":[{"id":"demo-one","path":"/ds1/","name":"Demo One"},'
                          b'{"id":"Demo_Two","path":"/ds2/","name":"Demo Two"}]}',
}


class G1Stub:
    """``http11`` and another ``server`` make a stand-in for an unknown Cellucid version."""

    def __init__(self, routes: dict[str, bytes], *, http11: bool = False,
                 server: str = "SimpleHTTP/0.6") -> None:
        class Handler(BaseHTTPRequestHandler):
            server_version = server
            sys_version = ""
            protocol_version = "HTTP/1.1" if http11 else "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                body = routes.get(self.path.split("?")[0])
                if body is None:
                    text = f"Not found: {self.path}".encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
