"""`cellucid-desktop serve`: the real console script in a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import h5py
import numpy as np
import pytest

from cellucid_desktop import __version__
from tests.helpers import as_background_job, wait_for
from tests.server.reference import raw_request

SCRIPT = str(Path(sys.executable).parent / "cellucid-desktop")
VIEWER_URL = re.compile(r"^  Viewer URL:\s+(\S+)$", re.M)
PORT_OF = re.compile(r"^http://127\.0\.0\.1:(\d+)/")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _bearer(viewer_url: str) -> list[tuple[str, str]]:
    """The header that carries the token the Viewer URL ends in (server/access.py)."""
    token = parse_qs(urlsplit(viewer_url).query)["token"][0]
    return [("Authorization", f"Bearer {token}")]


class Serving:
    """A running `cellucid-desktop serve`, its output read line by line. It is started
    as a background job is (SIGINT ignored): Ctrl+C must stop it all the same."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([SCRIPT, "serve", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=ENV,
                                        preexec_fn=as_background_job)
        self.stdout = ""

    def viewer_url(self) -> str:
        def banner() -> str | None:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.process.stderr.read()}")
            self.stdout += self.process.stdout.readline()
            match = VIEWER_URL.search(self.stdout)
            return match.group(1) if match else None
        return wait_for(banner, timeout=60, what="the Viewer URL line")

    def interrupt(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, self.stdout + out, err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


@pytest.fixture()
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for server in started:
        server.kill()


def _serve(started: list[Serving], *args: str) -> Serving:
    server = Serving(*args)
    started.append(server)
    return server


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, env=ENV, timeout=60)


def test_port_zero_prints_the_real_port_and_ctrl_c_exits_130_freeing_it(small_h5ad: Path, serving) -> None:
    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser")
    url = server.viewer_url()
    port = int(PORT_OF.match(url).group(1))
    assert raw_request(port, "GET", "/_cellucid/health").status == 200
    code, out, err = server.interrupt()
    assert code == 130
    assert "Traceback" not in err
    with socket.socket() as sock:  # nothing listens there any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_banner_has_cellucid_shape(small_h5ad: Path, serving) -> None:
    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser")
    url = server.viewer_url()
    assert "CELLUCID SERVER RUNNING" in server.stdout
    local = re.search(r"^  Local URL:\s+(\S+)$", server.stdout, re.M).group(1)
    assert url.startswith(local + "/")


def test_busy_port_gives_one_line_and_exit_1(small_h5ad: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = _run("serve", str(small_h5ad), "--port", str(port), "--no-browser")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"Port {port} is already in use" in result.stderr


def test_quiet_prints_nothing(small_h5ad: Path, serving) -> None:
    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser", "--quiet",
                    "--host", "0.0.0.0")
    # the server runs: find its port through /proc, since it prints nothing
    def listening_port() -> int | None:
        inodes = {os.readlink(f"/proc/{server.process.pid}/fd/{fd}")
                  for fd in os.listdir(f"/proc/{server.process.pid}/fd")}
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and f"socket:[{fields[9]}]" in inodes:
                return int(fields[1].split(":")[1], 16)
        return None
    port = wait_for(listening_port, timeout=60, what="the quiet server's socket")
    assert raw_request(port, "GET", "/_cellucid/health").status == 200
    code, out, err = server.interrupt()
    assert (code, out, err) == (130, "", "")


def test_non_loopback_host_warns(small_h5ad: Path, serving) -> None:
    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser", "--host", "0.0.0.0")
    url = server.viewer_url()
    assert url.startswith("http://127.0.0.1:")
    code, _out, err = server.interrupt()
    assert code == 130
    assert "Warning: binding 0.0.0.0" in err


def test_allowed_host_is_accepted(small_h5ad: Path, serving) -> None:
    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser",
                    "--allowed-host", "example.org", "--allowed-host", "10.0.0.7")
    port = int(PORT_OF.match(server.viewer_url()).group(1))
    assert raw_request(port, "GET", "/_cellucid/health", host="example.org:9").status == 200
    assert raw_request(port, "GET", "/_cellucid/health", host="10.0.0.7").status == 200
    assert raw_request(port, "GET", "/_cellucid/health", host="example.com:{port}").status == 421


def test_bad_allowed_host_gives_one_line_and_exit_1(small_h5ad: Path) -> None:
    result = _run("serve", str(small_h5ad), "--port", "0", "--no-browser", "--allowed-host", "*.org")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "--allowed-host" in result.stderr


def test_version_and_help() -> None:
    version = _run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"cellucid-desktop {__version__}"
    helped = _run("serve", "--help")
    assert helped.returncode == 0
    for flag in ("--port", "--host", "--allowed-host", "--no-browser", "--quiet"):
        assert flag in helped.stdout


# --- unusable inputs: one line on stderr, exit 1, never a traceback --------------------

def _broken_inputs(folder: Path, good: Path) -> dict[str, Path]:
    text = folder / "table.h5ad"
    text.write_text("gene,count\nA,1\n")
    plain = folder / "plain.h5"
    with h5py.File(plain, "w") as h5:
        h5["values"] = np.arange(10)
    cut = folder / "cut.h5ad"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = folder / "empty.h5ad"
    empty.write_bytes(b"")
    loop = folder / "loop.h5ad"
    loop.symlink_to(folder / "loop-back.h5ad")
    (folder / "loop-back.h5ad").symlink_to(loop)
    return {"missing": folder / "absent.h5ad", "directory": folder, "not HDF5": text,
            "not AnnData": plain, "truncated": cut, "empty": empty, "link loop": loop}


@pytest.mark.parametrize("case", ["missing", "directory", "not HDF5", "not AnnData", "truncated",
                                  "empty", "link loop"])
def test_unusable_input_gives_one_line_and_exit_1(small_h5ad: Path, tmp_path: Path, case: str) -> None:
    path = _broken_inputs(tmp_path, small_h5ad)[case]
    result = _run("serve", str(path), "--port", "0", "--no-browser")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert str(path) in result.stderr and "Traceback" not in result.stderr


def test_unreadable_file_gives_one_line_and_exit_1(small_h5ad: Path) -> None:
    # chmod 000 stops everyone but root; as root (CI containers) the command runs as the
    # unprivileged user `nobody` instead, which chmod 000 stops for real.
    folder = Path(tempfile.mkdtemp(prefix="cellucid-unreadable-"))
    try:
        folder.chmod(0o755)
        path = folder / "locked.h5ad"
        path.write_bytes(small_h5ad.read_bytes())
        path.chmod(0)
        argv = [SCRIPT, "serve", str(path), "--port", "0", "--no-browser"]
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                env={**ENV, "HOME": str(folder)})
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and "Permission denied" in result.stderr
    finally:
        path.chmod(0o600)
        path.unlink()
        folder.rmdir()


# --- other formats ----------------------------------------------------------------------

def test_a_zarr_store_and_a_mudata_modality_are_served_together(format_cases, serving) -> None:
    import json

    zarr_folder = format_cases["zarr-v3-folder"].path
    server = _serve(serving, str(zarr_folder), "--port", "0", "--no-browser", "--no-token")
    port = int(PORT_OF.match(server.viewer_url()).group(1))
    datasets = json.loads(raw_request(port, "GET", "/_cellucid/datasets").body)["datasets"]
    assert datasets[0]["anndata"]["file"]["layout"] == "folder"
    assert "AnnData Zarr" in server.stdout
    mudata = format_cases["h5mu-citeseq-rna"].path
    server = _serve(serving, str(mudata), "--modality", "prot", "--port", "0", "--no-browser",
                    "--no-token")
    port = int(PORT_OF.match(server.viewer_url()).group(1))
    entry = json.loads(raw_request(port, "GET", "/_cellucid/datasets").body)["datasets"][0]
    assert entry["anndata"]["defaults"] == {"modality": "prot"}
    assert "170 cells" in server.stdout and "(prot)" in server.stdout


def test_a_modality_of_a_file_without_modalities_gives_one_line(small_h5ad: Path) -> None:
    result = _run("serve", str(small_h5ad), "--modality", "rna", "--port", "0", "--no-browser")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not MuData" in result.stderr


# --- a bad day while serving: files changed under it, hostile keys, load ------------

def test_a_file_overwritten_in_place_is_one_truth_and_never_a_traceback(
        small_h5ad: Path, tmp_path: Path, serving) -> None:
    from cellucid_desktop.data.synthetic import make_synthetic

    served = tmp_path / "served.h5ad"
    served.write_bytes(small_h5ad.read_bytes())
    bigger = make_synthetic(tmp_path / "bigger.h5ad", 700, 90, genes_per_cell=8, seed=5)
    server = _serve(serving, str(served), "--port", "0", "--no-browser")
    url = server.viewer_url()
    port, auth = int(PORT_OF.match(url).group(1)), _bearer(url)

    def shapes() -> tuple[tuple, tuple | int]:
        health = json.loads(raw_request(port, "GET", "/_cellucid/health").body)
        api = raw_request(port, "GET", "/api/v1/datasets/small-test", auth)
        described = json.loads(api.body)
        return ((health["n_cells"], health["n_genes"]),
                (described["n_cells"], described["n_genes"]) if api.status == 200 else api.status)

    assert shapes() == ((3000, 500), (3000, 500))
    served.write_bytes(bigger.read_bytes())  # same inode, new content
    assert shapes() == ((700, 90), (700, 90))
    served.write_bytes(bigger.read_bytes()[:5000])  # now unusable
    assert shapes() == ((None, None), 422)
    refused = raw_request(port, "GET", "/api/v1/datasets/small-test/obs/cell_type", auth)
    assert refused.status == 422 and b"truncated" in refused.body
    for answer in (refused, raw_request(port, "GET", "/api/v1/datasets/small-test", auth)):
        assert str(tmp_path).encode() not in answer.body and b"served.h5ad" not in answer.body
    served.write_bytes(small_h5ad.read_bytes())  # repaired
    assert shapes() == ((3000, 500), (3000, 500))
    code, out, err = server.interrupt()
    assert code == 130 and "Traceback" not in out + err


def test_keys_from_the_file_cannot_send_escape_sequences_to_the_terminal(
        small_h5ad: Path, tmp_path: Path, serving) -> None:
    hostile = tmp_path / "hostile.h5ad"
    hostile.write_bytes(small_h5ad.read_bytes())
    with h5py.File(hostile, "r+") as h5:
        h5["obsm"]["X_\x1b[2J\x1b]0;owned\x07evil\u202e"] = np.zeros((3000, 2), "f4")
    server = _serve(serving, str(hostile), "--port", "0", "--no-browser")
    server.viewer_url()
    _code, out, err = server.interrupt()
    assert "X_\\x1b[2J\\x1b]0;owned\\x07evil\\u202e" in out
    assert not any(ch in out + err for ch in "\x1b\x07\u202e")


def test_a_busy_server_does_not_flood_the_terminal(small_h5ad: Path, serving) -> None:
    import threading

    server = _serve(serving, str(small_h5ad), "--port", "0", "--no-browser")
    url = server.viewer_url()
    port, auth = int(PORT_OF.match(url).group(1)), _bearer(url)
    statuses: list[int] = []

    def client() -> None:
        for _ in range(5):
            statuses.append(raw_request(port, "GET", "/api/v1/datasets/small-test/obs/"
                                        "cell_type/values", auth).status)

    threads = [threading.Thread(target=client) for _ in range(40)]  # > 12 workers
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert statuses == [200] * 200
    _code, _out, err = server.interrupt()
    assert "Task queue depth" not in err and err.count("\n") <= 1  # at most "Stopping"
