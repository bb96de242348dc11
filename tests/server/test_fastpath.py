"""Store reads answered on waitress's I/O thread with sendfile: still correct under
pipelining, and a client that stops reading never stalls the others."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.server.reference import raw_request

STORE = "/_cellucid/anndata/big.h5ad"


@pytest.fixture(scope="module")
def big_store(small_h5ad: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 40 MB store (far past the socket buffers, so a reader that stops stalls it)."""
    path = tmp_path_factory.mktemp("big") / "big.h5ad"
    shutil.copy(small_h5ad, path)
    with path.open("ab") as fh:
        fh.write(os.urandom(40 << 20))
    registry = DatasetRegistry()
    registry.add(path, dataset_id="big")
    with ServerThread(registry, token=None) as server:
        yield server, path.read_bytes()


def _request(port: int, method: str, headers: str = "") -> bytes:
    return (f"{method} {STORE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n").encode()


def _read_response(sock_file, head: bool = False) -> tuple[int, bytes]:
    status = int(sock_file.readline().split()[1])
    length = 0
    while (line := sock_file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, b"" if head else sock_file.read(length)


def test_pipelined_ranges_are_answered_in_order(big_store) -> None:
    server, data = big_store
    ranges = [(0, 99), (len(data) - 500, len(data) - 1), (12345, 80000), (5, 5)]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"".join(_request(server.port, "GET", f"Range: bytes={a}-{b}\r\n")
                              for a, b in ranges) + _request(server.port, "HEAD"))
        reader = sock.makefile("rb")
        for a, b in ranges:
            assert _read_response(reader) == (206, data[a:b + 1])
        assert _read_response(reader, head=True) == (200, b"")


def test_huge_pipelined_range_then_small_one_does_not_hang(big_store) -> None:
    server, data = big_store
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(_request(server.port, "GET", "Range: bytes=0-\r\n")
                     + _request(server.port, "GET", "Range: bytes=0-9\r\n"))
        reader = sock.makefile("rb")
        assert _read_response(reader) == (206, data)
        assert _read_response(reader) == (206, data[:10])


def test_a_client_that_stops_reading_does_not_stall_others(big_store) -> None:
    server, data = big_store
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as stalled:
        stalled.sendall(_request(server.port, "GET", "Range: bytes=0-\r\n"))
        for start in range(0, 2_000_000, 400_000):  # meanwhile, others are served
            answer = raw_request(server.port, "GET", STORE, [("Range", f"bytes={start}-{start + 65535}")])
            assert answer.status == 206 and answer.body == data[start:start + 65536]
        assert raw_request(server.port, "GET", "/_cellucid/health").status == 200
        reader = stalled.makefile("rb")  # and the stalled one still gets everything
        assert _read_response(reader) == (206, data)
