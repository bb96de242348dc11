"""The fallback without ControlMaster (Windows' OpenSSH): one ssh process carrying the
forward and the remote command, signed in once, against the real password + code sshd."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

from cellucid_desktop.remote.single_session import SingleSession
from cellucid_desktop.remote.ssh_command import Forward, HostSpec, multiplexing_supported
from cellucid_desktop.remote.ssh_process import SshError, SshState
from tests.helpers import free_port, wait_for
from tests.remote.mfa_sshd import MfaSshd, client_config, known_host_line
from tests.remote.signin import ScriptedUser
from tests.remote.sshd import SshLab

# A server that stops when the connection does: ssh allocates no terminal, so the remote
# command gets no hangup; it watches its stdin instead (as docs/remote.md advises).
SERVER = ('python3 -u -m http.server --bind 127.0.0.1 "$1" & server=$!; '
          'read -r _; kill "$server"')


def _host(tmp_path: Path, mfa: MfaSshd) -> HostSpec:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_host_line(mfa))
    config = client_config(tmp_path / "ssh_config", known_hosts, {"mfa": (mfa.port, mfa.user)},
                           ["  PubkeyAuthentication no"])
    return HostSpec("mfa", config_file=str(config))


def _get(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return answer.status


def _remote_port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_one_process_carries_the_forward_and_the_server_and_asks_once(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    user.script(mfa_sshd.password, lambda request: mfa_sshd.code())
    remote_port, local_port = free_port(), free_port()
    lines: list[str] = []
    session = SingleSession(_host(tmp_path, mfa_sshd), broker,
                            forwards=[Forward.tcp(local_port, "127.0.0.1", remote_port)],
                            command=["sh", "-c", SERVER, "sh", str(remote_port)],
                            on_output=lines.append).start()
    try:
        assert user.texts == mfa_sshd.prompts()
        assert wait_for(lambda: _get(local_port) == 200, 30, what="the server through the "
                        "forward")
        # the server's banner travels its own way (stdout, ssh, our reader thread), so
        # it may come after the first answer through the forward
        wait_for(lambda: any(f"port {remote_port}" in line for line in lines), 30,
                 what="the remote command's output")
        assert session.output == lines
    finally:
        session.close()
    assert session.state is SshState.CLOSED and session.pid is None
    wait_for(lambda: not _remote_port_open(remote_port), 30,
             what="the remote server to stop with the connection")
    assert len(user.asked) == 2


def test_a_busy_local_port_ends_the_session_at_once(mfa_sshd: MfaSshd, broker,
                                                    user: ScriptedUser, tmp_path: Path) -> None:
    user.script(mfa_sshd.password, lambda request: mfa_sshd.code())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SshError) as failed:
            SingleSession(_host(tmp_path, mfa_sshd), broker,
                          forwards=[Forward.tcp(port, "127.0.0.1", 9)],
                          command=["sleep", "600"]).start()
    assert failed.value.problem.kind == "local-port-busy"


@pytest.mark.parametrize("version,supported", [
    ("OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026", True),
    ("OpenSSH_9.8p1, LibreSSL 3.3.6", True),
    ("OpenSSH_for_Windows_9.5p1, LibreSSL 3.8.2", False),
    ("OpenSSH_for_Windows_8.1p1, LibreSSL 3.0.2", False),
    ("OpenSSH_6.6.1p1 Ubuntu-2ubuntu2, OpenSSL 1.0.1f 6 Jan 2014", False),
    ("PuTTY plink 0.81", False),
])
def test_multiplexing_is_detected_from_the_client_version(version: str,
                                                          supported: bool) -> None:
    assert multiplexing_supported(version) is supported


def test_an_ended_commands_last_lines_are_all_read(ssh_lab: SshLab, broker) -> None:
    """Once the command ended, ``wait_output`` returns with every line it wrote read,
    however slowly they are handled (the fallback's launch reads the server log the
    script printed as it ended)."""
    seen: list[str] = []

    def slowly(line: str) -> None:
        time.sleep(0.002)
        seen.append(line)

    session = SingleSession(HostSpec("login", config_file=str(ssh_lab.config)), broker,
                            forwards=[], command=["sh", "-c", "read -r _; seq 1 500"],
                            on_output=slowly).start()
    try:
        session.send(b"go\n")
        wait_for(lambda: not session.alive, 30, what="the command to end")
        session.wait_output(5)
        assert seen[-1] == "500" and len(seen) == 500
        assert session.output[-1] == "500"
    finally:
        session.close()
