"""Server faults: how long other clients wait, and what it costs, on a bad day.

Each case runs `cellucid-desktop serve` (this checkout, or ``--baseline DIR`` for
another checkout too, e.g. a git worktree of main) on a private copy of a synthetic
file and measures:

* idle: 320 idle connections (half after one keep-alive answer), then a new client's
  health request: its latency;
* blocked open: the served file replaced by a FIFO (its open() never returns), three
  store reads of it pending, then health and a Range read of a second file: latency;
* truncated: a 96 MB Range read, the file cut to 1 MB mid-answer: time until the
  server closes the connection, and the server's CPU seconds over the 3 s after.

A case that does not finish within ``--timeout`` seconds is reported as such.

    .venv/bin/python benchmarks/server_faults.py [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import BENCH_AUTH, BENCH_TOKEN, synthetic_file, token_file  # noqa: E402
from benchmarks.range_serving import BASELINE_BOOT, BIN  # noqa: E402

LOCAL_URL = re.compile(r"Local URL:\s+http://127\.0\.0\.1:(\d+)")


class Server:
    """One `serve` process on port 0 with the given files."""

    def __init__(self, command: list[str], files: list[Path]) -> None:
        argv = [*command, "serve", *map(str, files), "--port", "0", "--no-browser"]
        if "--token-file" in subprocess.run([*command, "serve", "--help"], text=True,
                                            capture_output=True).stdout:
            argv += ["--token-file", str(token_file(files[0].parent))]  # the default: guarded
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in self.proc.stdout:
            if match := LOCAL_URL.search(line):
                self.port = int(match.group(1))
                return
        raise SystemExit(f"{argv} exited before serving")

    def request(self, path: str, extra: str = "", timeout: float = 30) -> float:
        """Seconds until the answer's status line arrives (inf on timeout)."""
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{extra}"
                             f"Authorization: Bearer {BENCH_TOKEN}\r\n"
                             "Connection: close\r\n\r\n".encode())
                if not sock.recv(64):
                    return float("inf")
        except OSError:
            return float("inf")
        return time.perf_counter() - started

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def idle_connections(command: list[str], source: Path, folder: Path, timeout: float) -> str:
    server = Server(command, [source])
    idle = []
    try:
        for i in range(320):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            if i % 2:
                sock.sendall(f"GET /_cellucid/health HTTP/1.1\r\nHost: 127.0.0.1:"
                             f"{server.port}\r\n\r\n".encode())
            idle.append(sock)
        waits = [server.request("/_cellucid/health", timeout=timeout) for _ in range(3)]
        return " / ".join(_seconds(w) for w in waits)
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def blocked_open(command: list[str], source: Path, folder: Path, timeout: float) -> str:
    stuck, fine = folder / "stuck.h5ad", folder / "fine.h5ad"
    for path in (stuck, fine):
        shutil.copy(source, path)
    server = Server([*command], [stuck, fine])
    pending = []
    try:
        server.request("/_cellucid/anndata/stuck.h5ad", "Range: bytes=0-9\r\n")
        stuck.unlink()
        os.mkfifo(stuck)
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(f"GET /_cellucid/anndata/stuck.h5ad HTTP/1.1\r\nHost: 127.0.0.1:"
                         f"{server.port}\r\nAuthorization: Bearer {BENCH_TOKEN}\r\n"
                         "Range: bytes=0-99\r\n\r\n".encode())
            pending.append(sock)
            time.sleep(0.2)
        health = server.request("/_cellucid/health", timeout=timeout)
        other = server.request("/_cellucid/anndata/fine.h5ad", "Range: bytes=100-65635\r\n",
                               timeout=timeout)
        return f"health {_seconds(health)}, other store {_seconds(other)}"
    finally:
        os.close(os.open(stuck, os.O_RDWR | os.O_NONBLOCK))
        for sock in pending:
            sock.close()
        server.stop()
        stuck.unlink()


def truncated(command: list[str], source: Path, folder: Path, timeout: float) -> str:
    big = folder / "big.h5ad"
    shutil.copy(source, big)
    with big.open("ab") as fh:
        fh.write(os.urandom(96 << 20))
    server = Server(command, [big])
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(f"GET /_cellucid/anndata/{_id_of(server)}.h5ad HTTP/1.1\r\nHost: "
                         f"127.0.0.1:{server.port}\r\nAuthorization: Bearer {BENCH_TOKEN}\r\n"
                         "Range: bytes=0-\r\n\r\n".encode())
            sock.recv(1 << 16)
            os.truncate(big, 1 << 20)
            started = time.perf_counter()
            sock.settimeout(timeout)
            closed = float("inf")
            try:
                while sock.recv(1 << 20):
                    pass
                closed = time.perf_counter() - started
            except OSError:
                pass
        before = server.cpu_seconds()
        time.sleep(3)
        return f"closed after {_seconds(closed)}, CPU {server.cpu_seconds() - before:.2f} s in 3 s"
    finally:
        server.stop()
        big.unlink()


def _id_of(server: Server) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", "/_cellucid/datasets", headers={"Host": f"127.0.0.1:{server.port}",
                                                        **BENCH_AUTH})
    dataset_id = json.loads(conn.getresponse().read())["datasets"][0]["id"]
    conn.close()
    return dataset_id


def _seconds(value: float) -> str:
    return "timed out" if value == float("inf") else f"{value * 1000:.0f} ms"


CASES = {"320 idle connections: new client's health (3 tries)": idle_connections,
         "open() of a store blocks: other clients": blocked_open,
         "file cut short mid-answer": truncated}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="DIR", help="also run this checkout's server")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    source = synthetic_file("faults-20k.h5ad", 20_000, 2_000, genes_per_cell=50, seed=4)
    commands = {"cellucid-desktop": [str(BIN / "cellucid-desktop")]}
    if args.baseline:
        commands["baseline"] = [sys.executable, "-c", BASELINE_BOOT, args.baseline]
    print(f"| {'case':<52} | {'server':<16} | result |")
    print(f"|{'-' * 54}|{'-' * 18}|--------|")
    for label, case in CASES.items():
        for name, command in commands.items():
            with tempfile.TemporaryDirectory(prefix="cellucid-faults-") as folder:
                result = case(command, source, Path(folder), args.timeout)
            print(f"| {label:<52} | {name:<16} | {result} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
