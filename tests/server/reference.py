"""Start the real `cellucid serve` 0.9.5 and talk raw HTTP to any server.

Shared by the conformance suite (ours against theirs, same requests) and the CLI
tests, which both need exact control over the request line and Host headers.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import wait_for

VENV_BIN = Path(sys.executable).parent
LOCAL_URL = re.compile(r"^  Local URL:\s+http://127\.0\.0\.1:(\d+)$", re.M)


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


class ReferenceServer:
    """`cellucid serve FILE --no-web-ui` in a subprocess, on a port the OS picks."""

    def __init__(self, path: Path, dataset_id: str, name: str, extra: list[str] = ()) -> None:
        argv = [str(VENV_BIN / "cellucid"), "serve", str(path), "--no-web-ui", "--no-browser",
                "--port", "0", "--dataset-id", dataset_id, "--dataset-name", name, *extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=env)
        self.output = ""
        self.port = wait_for(self._read_port, timeout=90, what="cellucid serve's banner")
        wait_for(lambda: raw_request(self.port, "GET", "/_cellucid/health").status == 200,
                 what="cellucid serve's health route")

    def _read_port(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"cellucid serve exited: {self.output}{self.process.stdout.read()}")
        self.output += self.process.stdout.readline()
        match = LOCAL_URL.search(self.output)
        return int(match.group(1)) if match else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
