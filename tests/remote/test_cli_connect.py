"""`cellucid-desktop connect` as a user runs it: real process, real ssh, Ctrl+C."""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

from tests.helpers import wait_for
from tests.remote.connect_cli import ROOT, connect_command, running_connect, viewer_url
from tests.remote.servers import ServeProcess, token_file
from tests.remote.sshd import SshLab, children


def _cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(connect_command(*args), capture_output=True, text=True, timeout=60,
                          cwd=ROOT, **kwargs)


def test_print_command_shows_the_tunnel_and_the_remote_server_command() -> None:
    result = _cli("alice@hpc", "--node", "c042", "--remote-port", "9000", "-J", "gw",
                  "--print-command")
    assert result.returncode == 0
    assert "ssh -N -L 127.0.0.1:9000:c042:9000 -J gw alice@hpc" in result.stdout
    assert "cellucid serve data.h5ad --no-browser --port 9000" in result.stdout


def test_a_target_with_spaces_is_refused_with_one_line() -> None:
    result = _cli("alice@hpc; rm -rf ~", "--print-command")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: SSH target") and "Traceback" not in result.stderr


def test_connect_tunnel_no_window_prints_viewer_url_and_ctrl_c_stops_ssh(
        ssh_lab: SshLab, desktop_remote: ServeProcess, tmp_path: Path) -> None:
    with running_connect("login", "-F", str(ssh_lab.config), "--remote-port",
                         str(desktop_remote.port), "--no-window", "--token-file",
                         str(token_file(tmp_path, desktop_remote.token))) as proc:
        url = viewer_url(proc)
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200
        ssh = children(proc.pid)
        assert ssh, "ssh should run as a child of connect"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in ssh),
                 what="ssh to be stopped")


def test_connect_to_an_already_forwarded_port(desktop_remote: ServeProcess,
                                             tmp_path: Path) -> None:
    with running_connect(str(desktop_remote.port), "--no-window", "--token-file",
                         str(token_file(tmp_path, desktop_remote.token))) as proc:
        url = viewer_url(proc)
        assert url == (f"http://127.0.0.1:{desktop_remote.port}/?dataset=remote-data"
                       f"&token={desktop_remote.token}")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130


def test_connect_reports_a_failed_login_and_exits_1(ssh_lab: SshLab) -> None:
    result = _cli("login-wrong-key", "-F", str(ssh_lab.config), "--no-window")
    assert result.returncode == 1
    assert ("Error: login-wrong-key accepted none of the ways ssh could sign in "
            "(publickey)") in result.stderr
