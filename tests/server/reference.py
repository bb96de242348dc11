"""Start the real `cellucid serve` 0.9.5 and talk raw HTTP to any server.

Shared by the conformance suite (ours against theirs, same requests) and the CLI
tests, which both need exact control over the request line and Host headers.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cellucid_desktop.remote.child_process import die_with_parent
from cellucid_desktop.server.access import NEW_TOKEN
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.helpers import wait_for

VENV_BIN = Path(sys.executable).parent
LOCAL_URL = re.compile(r"^  Local URL:\s+http://([0-9.]+):(\d+)", re.M)
TOKEN = re.compile(r"^  Viewer URL:\s+\S*[?&]token=([A-Za-z0-9._~-]+)", re.M)


@dataclass
class Answer:
    """One HTTP response, read completely."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


def raw_request(port: int, method: str, path: str, headers: list[tuple[str, str]] = (),
                body: bytes | None = None, host: str | None = "127.0.0.1:{port}") -> Answer:
    """Send one request exactly as given: ``host`` None sends no Host header at all."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host.format(port=port))
        for name, value in headers:
            conn.putheader(name, value.format(port=port))
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, response.reason, response.getheaders(), data)
    finally:
        conn.close()


class ServeProcess:
    """A server CLI that prints cellucid's banner, run as a subprocess on a free port.

    ``host``/``port`` come from its ``Local URL`` line, ``token`` (our server's access
    token, None for cellucid) from its ``Viewer URL``; the process dies with the test
    run even if pytest is killed.
    """

    def __init__(self, argv: list[str]) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env, stdin=subprocess.DEVNULL,
                                        preexec_fn=die_with_parent)
        self.output = ""
        self.host, self.port = wait_for(self._read_url, timeout=90, what=f"{argv[0]} banner")
        token = TOKEN.search(self.output)
        self.token = token.group(1) if token else None
        if self.host == "127.0.0.1":  # raw_request reaches 127.0.0.1 only
            wait_for(lambda: raw_request(self.port, "GET", "/_cellucid/health").status == 200,
                     what="the server's health route", interval=0.2)

    def _read_url(self) -> tuple[str, int] | None:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.output}{self.process.stdout.read()}")
        self.output += self.process.stdout.readline()
        match = LOCAL_URL.search(self.output)
        if match is None or "Viewer URL:" not in self.output:  # both servers print both
            return None
        return match.group(1), int(match.group(2))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()


def reference_server(path: Path, dataset_id: str, name: str, extra: list[str] = ()) -> ServeProcess:
    """`cellucid serve FILE --no-web-ui` 0.9.5 on a port the OS picks."""
    return ServeProcess([str(VENV_BIN / "cellucid"), "serve", str(path), "--no-web-ui",
                         "--no-browser", "--port", "0", "--dataset-id", dataset_id,
                         "--dataset-name", name, *extra])


# Headers whose values a client acts on; compared by value. Date and Server differ by
# nature; Connection/Keep-Alive are transport details of each server.
COMPARED_HEADERS = (
    "content-type", "content-length", "content-range", "accept-ranges", "etag",
    "cache-control", "access-control-allow-origin", "access-control-allow-methods",
    "access-control-allow-headers", "access-control-expose-headers", "vary",
    "content-encoding", "location",
)
# JSON values that differ by design: our version string, and each server's own port.
VARYING_KEYS = {"version", "port"}


class Pair:
    """The reference server and ours, on one file or store, with the same options;
    ``token`` False = ours in the --no-token parity mode, True = ours with its access
    token, which every request to ours carries (``Authorization: Bearer``)."""

    def __init__(self, path: Path, dataset_id: str, name: str, *,
                 allowed_hosts: list[str] = (), modality: str | None = None,
                 token: bool = False) -> None:
        extra = [arg for host in allowed_hosts for arg in ("--allowed-host", host)]
        self.theirs = reference_server(path, dataset_id, name, extra + (
            ["--modality", modality] if modality else []))
        registry = DatasetRegistry()
        registry.add(path, dataset_id=dataset_id, name=name, modality=modality)
        self.ours = ServerThread(registry, allowed_hosts=allowed_hosts,
                                 token=NEW_TOKEN if token else None).start()
        self.auth = [("Authorization", f"Bearer {self.ours.token}")] if token else []

    def both(self, method: str, path: str, headers: list[tuple[str, str]] = (),
             body: bytes | None = None, host: str | None = "127.0.0.1:{port}",
             ) -> tuple[Answer, Answer]:
        return (raw_request(self.theirs.port, method, path, headers, body, host),
                raw_request(self.ours.port, method, path, [*headers, *self.auth], body, host))

    def stop(self) -> None:
        self.ours.stop()
        self.theirs.stop()


def _normalized_json(body: bytes) -> object:
    def scrub(value: object) -> object:
        if isinstance(value, dict):
            return {k: ("<varies>" if k in VARYING_KEYS else scrub(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value
    return scrub(json.loads(body))


def assert_same(theirs: Answer, ours: Answer, *, compare_body: bool = True) -> None:
    """The answers agree on everything a client of `cellucid serve` can act on."""
    assert (ours.status, ours.reason) == (theirs.status, theirs.reason)
    for name in COMPARED_HEADERS:
        if name == "content-length" and theirs.header("content-type") == "application/json":
            continue  # the version string has another length
        assert ours.header(name) == theirs.header(name), f"header {name}"
    if not compare_body:
        return
    if theirs.header("content-type") == "application/json" and theirs.body:
        assert ours.body.startswith(b"{") and _normalized_json(ours.body) == _normalized_json(theirs.body)
        assert list(json.loads(ours.body)) == list(json.loads(theirs.body))  # key order too
    else:
        assert ours.body == theirs.body
