"""Act as another user of this machine (uid 65534 through ``setpriv``) against servers
we started, and report every answer they got.

The other user runs the system's ``python3`` with the standard library only (they
cannot read our virtualenv), reading the probe script from standard input. They know
what anyone on the machine can see: the port (``ss -ltn``) or socket path, and they
guess the rest: dataset ids, tokens, cookies, control commands.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

OTHER_UID = 65534
GUESSED_TOKEN = "guessed-token-0123456789abcdef"

PROBE = r'''
import http.client, json, socket, sys

class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)

def ask(target, method, path, headers, body):
    if "socket" in target:
        conn = UnixConnection(target["socket"])
        host = "127.0.0.1:8765"
    else:
        conn = http.client.HTTPConnection("127.0.0.1", target["port"], timeout=10)
        host = "127.0.0.1:%d" % target["port"]
    try:
        conn.request(method, path, body=body, headers={"Host": host, **headers})
        response = conn.getresponse()
        data = response.read()
        return {"status": response.status, "body": data.decode("latin-1")}
    except OSError as exc:
        return {"status": None, "error": type(exc).__name__}
    finally:
        conn.close()

results = []
for target in json.loads(sys.argv[1]):
    for method, path, headers, body in target["requests"]:
        answer = ask(target, method, path, headers, body.encode() if body else None)
        results.append({"target": target["name"], "method": method, "path": path,
                        "headers": headers, **answer})
print(json.dumps(results))
'''


@dataclass(frozen=True)
class Answer:
    target: str
    method: str
    path: str
    headers: dict[str, str]
    status: int | None
    body: str
    error: str | None

    @property
    def data_bytes(self) -> int:
        """Body bytes of a successful answer (what a data leak would be)."""
        return len(self.body.encode("latin-1")) if self.status and 200 <= self.status < 300 else 0


def guesses(dataset_id: str, port: int | None) -> list[tuple[str, str, dict[str, str], str]]:
    """Every request the other user tries: each data route, bare and with guessed
    credentials, and the desktop's control commands."""
    cookie = f"cellucid-token-{port or 8765}"
    paths = ["/", f"/?dataset={dataset_id}", "/viewer/viewer.css", "/index.html",
             "/assets/app.js", "/_cellucid/info", "/_cellucid/datasets", "/_cellucid/protocol",
             f"/_cellucid/anndata/{dataset_id}.h5ad", "/api/v1/datasets",
             f"/api/v1/datasets/{dataset_id}", f"/api/v1/datasets/{dataset_id}/embeddings/X_umap",
             f"/api/v1/datasets/{dataset_id}/obs/cell_type", "/_desktop/pages/home.html",
             "/__test__/windows"]
    credentials = [{}, {"Authorization": f"Bearer {GUESSED_TOKEN}"},
                   {"Cookie": f"{cookie}={GUESSED_TOKEN}"}, {"Cookie": f"{cookie}="},
                   {"Range": "bytes=0-1023"}, {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}]
    requests = [("GET", path, headers, "") for path in paths for headers in credentials]
    requests += [("GET", f"{path}{'&' if '?' in path else '?'}token={token}", {}, "")
                 for path in paths for token in (GUESSED_TOKEN, "")]
    open_file = json.dumps({"paths": ["/etc/hostname"], "demo": True})
    requests += [("POST", f"/_desktop/control/{command}", headers, body)
                 for command, body in (("ping", "{}"), ("open", open_file), ("quit", "{}"),
                                       ("connect", "{}"))
                 for headers in ({}, {"X-Cellucid-Nonce": "0" * 32,
                                      "X-Cellucid-Proof": "0" * 64},
                                 {"X-Cellucid-Token": GUESSED_TOKEN})]
    requests.append(("POST", "/api/v1/datasets", {"Content-Type": "application/json"}, "{}"))
    return requests


def probe_as_other_user(targets: list[dict]) -> list[Answer]:
    """Run the probe as uid 65534; ``targets``: {"name", "port" or "socket",
    "requests"}."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed for the second-user tests"
    result = subprocess.run(
        [setpriv, f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups",
         "/usr/bin/python3", "-", json.dumps(targets)],
        input=PROBE, capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr
    return [Answer(r["target"], r["method"], r["path"], r["headers"], r["status"],
                   r.get("body", ""), r.get("error")) for r in json.loads(result.stdout)]


def leaks(answers: list[Answer]) -> list[Answer]:
    """Answers that handed over anything but the open health route and the control
    routes' public challenge (which only proves the server knows its secret)."""
    return [a for a in answers if a.data_bytes and a.path != "/_cellucid/health"
            and a.path != "/_desktop/control/hello"]
