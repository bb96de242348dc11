"""A bad day for the server: a file cut short while it is sent, a store whose open()
never returns, pages on a cold disk. The server must close what it cannot finish, keep
every blocking call off waitress's I/O thread and never spin."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from cellucid_desktop.server.store import StoreRoutes
from tests.helpers import wait_for
from tests.server.reference import ServeProcess, raw_request

SCRIPT = str(Path(sys.executable).parent / "cellucid-desktop")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _auth(server) -> list[tuple[str, str]]:
    """The header that lets a request past the server's token (server/access.py)."""
    return [("Authorization", f"Bearer {server.token}")]


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head, and whatever body bytes came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before answering"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.fixture()
def big_copy(small_h5ad: Path, tmp_path: Path) -> Path:
    path = tmp_path / "big.h5ad"
    shutil.copy(small_h5ad, path)
    with path.open("ab") as fh:
        fh.write(os.urandom(96 << 20))  # far past socket buffers and waitress's queue
    return path


def test_a_file_cut_short_while_it_is_sent_closes_the_connection_without_spinning(
        big_copy: Path) -> None:
    server = ServeProcess([SCRIPT, "serve", str(big_copy), "--port", "0", "--no-browser",
                           "--dataset-id", "big"])
    try:
        size = big_copy.stat().st_size
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
            sock.sendall(f"GET /_cellucid/anndata/big.h5ad HTTP/1.1\r\nHost: 127.0.0.1:"
                         f"{server.port}\r\nAuthorization: Bearer {server.token}\r\n"
                         f"Range: bytes=0-\r\n\r\n".encode())
            head, body = _read_head(sock)
            assert b" 206 " in head.split(b"\r\n")[0] and f"/{size}".encode() in head
            os.truncate(big_copy, 1 << 20)  # the file shrinks mid-answer
            sock.settimeout(20)
            received = len(body)
            deadline = time.monotonic() + 20
            while chunk := sock.recv(1 << 20):  # the server must end it, not stall
                received += len(chunk)
                assert time.monotonic() < deadline, "the connection was never closed"
        assert received < size
        before = _cpu_seconds(server.process.pid)
        time.sleep(3)
        assert _cpu_seconds(server.process.pid) - before < 0.5  # no thread left spinning
        assert raw_request(server.port, "GET", "/_cellucid/health").status == 200
    finally:
        server.stop()


@pytest.fixture()
def two_stores(small_h5ad: Path, tmp_path: Path):
    """Two served copies; the first one's path is later taken over by a FIFO."""
    paths = [tmp_path / "stuck.h5ad", tmp_path / "fine.h5ad"]
    registry = DatasetRegistry()
    for path in paths:
        shutil.copy(small_h5ad, path)
        registry.add(path, dataset_id=path.stem)
    with ServerThread(registry) as server:
        yield server, paths


def test_a_store_whose_open_blocks_stalls_no_other_client(two_stores) -> None:
    server, (stuck, fine) = two_stores
    data = fine.read_bytes()
    assert raw_request(server.port, "GET", "/_cellucid/anndata/stuck.h5ad",
                       [("Range", "bytes=0-9"), *_auth(server)]).status == 206
    stuck.unlink()
    os.mkfifo(stuck)  # opening a FIFO for reading blocks until a writer appears
    try:
        readers = []
        for _ in range(3):  # reads of the stuck store, some after it was re-validated
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(f"GET /_cellucid/anndata/stuck.h5ad HTTP/1.1\r\nHost: 127.0.0.1:"
                         f"{server.port}\r\nAuthorization: Bearer {server.token}\r\n"
                         f"Range: bytes=0-99\r\n\r\n".encode())
            readers.append(sock)
            time.sleep(0.2)
        for _ in range(5):  # meanwhile everyone else is answered, and at once
            started = time.monotonic()
            health = raw_request(server.port, "GET", "/_cellucid/health")
            other = raw_request(server.port, "GET", "/_cellucid/anndata/fine.h5ad",
                                [("Range", "bytes=100-4195"), *_auth(server)])
            assert health.status == 200
            assert other.status == 206 and other.body == data[100:4196]
            assert time.monotonic() - started < 10
        for sock in readers:
            sock.settimeout(10)
            assert _read_head(sock)[0]  # answered too (bytes of the old file, or a 404)
            sock.close()
        later = raw_request(server.port, "GET", "/_cellucid/anndata/stuck.h5ad", _auth(server))
        assert later.status == 404 and str(stuck.parent).encode() not in later.body
    finally:
        os.close(os.open(stuck, os.O_RDWR | os.O_NONBLOCK))  # frees any reader stuck on it


def test_bytes_not_in_memory_are_left_to_a_worker(small_h5ad: Path, tmp_path: Path) -> None:
    path = tmp_path / "cold.h5ad"
    shutil.copy(small_h5ad, path)
    registry = DatasetRegistry()
    dataset = registry.add(path, dataset_id="cold")
    routes = StoreRoutes(lambda environ, start: [], registry)
    request = ("GET", "/_cellucid/anndata/cold.h5ad", {"RANGE": "bytes=65536-131071"})
    assert routes.prepare_inline(*request) is None  # never validated: a worker opens it
    routes.files.current(dataset)
    with path.open("rb") as fh:
        os.fsync(fh.fileno())
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # off the page cache
    assert routes.prepare_inline(*request) is None  # reading it would wait for the disk
    path.read_bytes()  # back in the page cache
    prepared = routes.prepare_inline(*request)
    # where the OS cannot tell what is in memory or has no sendfile (Windows), bodies
    # always go to a worker; answers without a body are given inline everywhere
    assert (prepared is not None) == hasattr(os, "sendfile")
    if prepared is not None:
        assert (prepared.answer.start, prepared.answer.length) == (65536, 65536)
    head = routes.prepare_inline("HEAD", "/_cellucid/anndata/cold.h5ad", {})
    assert head is not None and head.answer.status == 200 and head.answer.length == 0


def test_concurrent_readers_of_a_changing_file_never_get_mixed_versions(
        small_h5ad: Path, tmp_path: Path) -> None:
    """Every answer's bytes belong to the version its ETag names (files replaced by
    rename, as editors and `cp --remove-destination` do)."""
    path = tmp_path / "changing.h5ad"
    versions = {}
    for i in range(3):
        body = small_h5ad.read_bytes() + bytes([i]) * 70000
        staged = tmp_path / f"v{i}"
        staged.write_bytes(body)
        versions[i] = (staged, body)
    shutil.copy(versions[0][0], path)
    registry = DatasetRegistry()
    registry.add(path, dataset_id="changing")
    seen: dict[str, bytes] = {}
    errors: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            answer = raw_request(server.port, "GET", "/_cellucid/anndata/changing.h5ad",
                                 [("Range", "bytes=-70000"), *_auth(server)])
            tag = answer.header("etag")
            if seen.setdefault(tag, answer.body) != answer.body:
                errors.append(f"{tag} named two bodies")

    with ServerThread(registry) as server:
        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        for i in (1, 2, 0, 1):
            fresh = tmp_path / "next"
            shutil.copy(versions[i][0], fresh)
            os.replace(fresh, path)
            wait_for(lambda i=i: raw_request(server.port, "GET", "/_cellucid/anndata/changing.h5ad",
                                             [("Range", "bytes=-1"), *_auth(server)]
                                             ).body == bytes([i]),
                     timeout=20, interval=0.02, what=f"version {i} to be served")
            tag = raw_request(server.port, "HEAD", "/_cellucid/anndata/changing.h5ad",
                              _auth(server)).header("etag")
            wait_for(lambda tag=tag: tag in seen, timeout=20, interval=0.02,
                     what=f"the readers to get version {i}")
            assert seen[tag][-1] == i
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors


def test_hundreds_of_idle_connections_lock_no_one_out(small_h5ad: Path) -> None:
    registry = DatasetRegistry()
    registry.add(small_h5ad)
    idle: list[socket.socket] = []
    with ServerThread(registry) as server:
        try:
            for i in range(320):  # past the connection limit (200)
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
                if i % 2:  # half are kept-alive connections that had one answer
                    sock.sendall(f"GET /_cellucid/health HTTP/1.1\r\nHost: 127.0.0.1:"
                                 f"{server.port}\r\n\r\n".encode())
                idle.append(sock)
            for _ in range(3):  # a new client is answered at once, again and again
                started = time.monotonic()
                conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                conn.sendall(f"GET /_cellucid/health HTTP/1.1\r\nHost: 127.0.0.1:"
                             f"{server.port}\r\nConnection: close\r\n\r\n".encode())
                assert b" 200 " in _read_head(conn)[0].split(b"\r\n")[0]
                conn.close()
                assert time.monotonic() - started < 5
                idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
        finally:
            for sock in idle:
                sock.close()
