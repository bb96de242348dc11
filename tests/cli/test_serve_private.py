"""`cellucid-desktop serve` private by default: its token, --token-file, --no-token and
--socket, as a user runs them."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.http_client import Client, Endpoint
from tests.cli.test_serve_cli import ENV, SCRIPT, Serving, serving  # noqa: F401 - fixture
from tests.server.reference import raw_request

TOKEN_IN = re.compile(r"[?&]token=([A-Za-z0-9._~-]+)")
FIELD = re.compile(r"^  (\w[\w ]*):\s+(.+)$", re.M)


def fields(output: str) -> dict[str, str]:
    return dict(FIELD.findall(output))


def port_of(url: str) -> int:
    return int(re.match(r"http://127\.0\.0\.1:(\d+)/", url).group(1))


def test_the_viewer_url_carries_a_new_token_every_start(small_h5ad: Path, serving) -> None:
    tokens = []
    for _ in range(2):
        server = Serving(str(small_h5ad), "--port", "0", "--no-browser")
        serving.append(server)
        url = server.viewer_url()
        tokens.append(TOKEN_IN.search(url).group(1))
        port = port_of(url)
        assert raw_request(port, "GET", "/_cellucid/datasets").status == 401
        assert raw_request(port, "GET", "/_cellucid/datasets",
                           [("Authorization", f"Bearer {tokens[-1]}")]).status == 200
    assert tokens[0] != tokens[1]


def test_token_file_gives_the_token_and_no_token_answers_like_cellucid(
        small_h5ad: Path, tmp_path: Path, serving) -> None:
    file = tmp_path / "token"
    file.touch(mode=0o600)
    file.write_text("launcher-chosen-token-0123456789\n")
    chosen = Serving(str(small_h5ad), "--port", "0", "--no-browser", "--token-file", str(file))
    serving.append(chosen)
    assert chosen.viewer_url().endswith("&token=launcher-chosen-token-0123456789")
    open_server = Serving(str(small_h5ad), "--port", "0", "--no-browser", "--no-token")
    serving.append(open_server)
    url = open_server.viewer_url()
    assert "token=" not in url
    assert raw_request(port_of(url), "GET", "/_cellucid/datasets").status == 200
    code, _out, err = open_server.interrupt()
    assert code == 130 and err.splitlines()[0].startswith("Warning: --no-token: every user")


def test_the_token_can_come_on_standard_input_never_on_the_command_line(
        small_h5ad: Path) -> None:
    process = subprocess.Popen([SCRIPT, "serve", str(small_h5ad), "--port", "0",
                                "--no-browser", "--token-file", "-"], env=ENV, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        process.stdin.write("piped-by-the-launcher-0123456789\n")
        process.stdin.flush()
        seen = ""
        while "Viewer URL" not in seen:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            seen += line
        assert "token=piped-by-the-launcher-0123456789" in seen
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert b"piped-by-the-launcher" not in cmdline  # ps shows no token
    finally:
        process.kill()
        process.communicate()


def test_a_token_file_others_can_read_is_refused(small_h5ad: Path, tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("readable-by-everyone-0123456789")
    file.chmod(0o644)
    result = subprocess.run([SCRIPT, "serve", str(small_h5ad), "--token-file", str(file)],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "chmod 600" in result.stderr


@pytest.fixture()
def runtime_env() -> Iterator[dict[str, str]]:
    """A short XDG_RUNTIME_DIR of this test's own (pytest's paths are too long for one)."""
    runtime = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))
    yield {**ENV, "XDG_RUNTIME_DIR": str(runtime)}
    shutil.rmtree(runtime)


def test_socket_serves_privately_and_prints_the_forward_line(small_h5ad: Path,
                                                             runtime_env) -> None:
    env = runtime_env
    process = subprocess.Popen([SCRIPT, "serve", str(small_h5ad), "--socket", "--no-browser",
                                "--dataset-id", "sock"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = ""
        while "Viewer URL" not in seen:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            seen += line
        shown = fields(seen)
        path = Path(shown["Socket"])
        assert path.parent == Path(env["XDG_RUNTIME_DIR"]) / "cellucid-desktop"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert shown["Forward"].startswith(f"ssh -N -L 127.0.0.1:8765:{path} ")
        assert shown["Connect"] == f"cellucid-desktop connect HOST --remote-socket {path}"
        token = TOKEN_IN.search(shown["Viewer URL"]).group(1)
        assert shown["Viewer URL"].startswith("http://127.0.0.1:8765/?dataset=sock&token=")
        with Client(Endpoint(socket_path=str(path))) as anonymous:
            assert anonymous.get("/_cellucid/datasets").status == 401
        # any local port a forward uses names the server in Host
        with Client(Endpoint(socket_path=str(path), host_header="127.0.0.1:40123",
                             token=token)) as owner:
            assert b'"sock"' in owner.get("/_cellucid/datasets").body
            info = owner.get("/_cellucid/info").json()
            assert info["port"] is None
    finally:
        process.send_signal(2)
        assert process.wait(30) == 130
        process.communicate()
    assert not path.exists()  # removed on exit


@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_a_socket_in_a_folder_others_can_enter_is_refused(small_h5ad: Path, tmp_path: Path,
                                                          mode: int) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(mode)
    result = subprocess.run([SCRIPT, "serve", str(small_h5ad), "--socket",
                             str(folder / "s.sock")], capture_output=True, text=True,
                            env=ENV, timeout=60)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "other users can enter" in result.stderr and "Traceback" not in result.stderr


def test_a_socket_a_live_server_holds_is_refused(small_h5ad: Path, runtime_env,
                                                 serving) -> None:
    env = runtime_env
    folder = Path(env["XDG_RUNTIME_DIR"])
    first = Serving(str(small_h5ad), "--socket", str(folder / "s.sock"), "--no-browser")
    serving.append(first)
    first.viewer_url()
    result = subprocess.run([SCRIPT, "serve", str(small_h5ad), "--socket",
                             str(folder / "s.sock")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 1 and "already listens" in result.stderr
    os.kill(first.process.pid, 0)  # the first server is untouched
