"""Real ssh through a real sshd: the supervisor's states, reconnects, errors, cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cellucid_desktop.remote.ports import any_free_port
from cellucid_desktop.remote.probe import fetch
from cellucid_desktop.remote.ssh_command import TunnelSpec
from cellucid_desktop.remote import tunnel as tunnel_module
from cellucid_desktop.remote.tunnel import Tunnel, TunnelState, TunnelStatus
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.desktop.gui import descendants, running
from tests.helpers import free_port, wait_for
from tests.remote.conftest import spec_for
from tests.remote.servers import ServeProcess
from tests.remote.sshd import KILL, SshLab, keygen


def _health_through(port: int, remote_port: int) -> int:
    return fetch(port, "/_cellucid/health", host_port=remote_port, timeout=10).status


def _failed(spec: TunnelSpec, local: int | None = None, **options: object) -> TunnelStatus:
    """Run a tunnel that must fail; its final status."""
    tunnel = Tunnel(spec, local or any_free_port(), **options)
    status = tunnel.start().wait_until({TunnelState.FAILED}, 60)
    tunnel.stop()
    assert status.state == TunnelState.FAILED, status
    return status


def test_tunnel_connects_forwards_and_stops_its_ssh(ssh_lab: SshLab,
                                                    desktop_remote: ServeProcess) -> None:
    seen: list[TunnelStatus] = []
    local = any_free_port()
    tunnel = Tunnel(spec_for(ssh_lab, desktop_remote.port), local, on_status=seen.append)
    status = tunnel.start().wait_connected(60)
    try:
        assert status.state == TunnelState.CONNECTED, status.message
        assert _health_through(local, desktop_remote.port) == 200
        pid = tunnel.pid
        assert pid is not None and running(pid)
    finally:
        tunnel.stop()
    assert not running(pid)
    assert [s.state for s in seen][:2] == [TunnelState.CONNECTING, TunnelState.CONNECTED]
    assert seen[-1].state == TunnelState.STOPPED


def test_jump_host_tunnel_reaches_the_server_and_stops_with_its_helper(
        ssh_lab: SshLab, desktop_remote: ServeProcess) -> None:
    local = any_free_port()
    tunnel = Tunnel(spec_for(ssh_lab, desktop_remote.port, jump=("jump",)), local)
    try:
        status = tunnel.start().wait_connected(60)
        assert status.state == TunnelState.CONNECTED, status.message
        assert "-J" in tunnel.argv and "jump" in tunnel.argv
        assert _health_through(local, desktop_remote.port) == 200
        ssh = {tunnel.pid} | descendants(tunnel.pid)  # ssh and the -J helper it started
        assert len(ssh) >= 2
    finally:
        tunnel.stop()
    wait_for(lambda: not any(running(pid) for pid in ssh), 20, what="both ssh to end")


def test_killed_ssh_is_restarted_by_the_supervisor(ssh_lab: SshLab,
                                                   desktop_remote: ServeProcess) -> None:
    local = any_free_port()
    seen: list[TunnelStatus] = []
    tunnel = Tunnel(spec_for(ssh_lab, desktop_remote.port), local, on_status=seen.append,
                    backoff=(0.5,))
    try:
        assert tunnel.start().wait_connected(60).state == TunnelState.CONNECTED
        first = tunnel.pid
        os.kill(first, KILL)
        wait_for(lambda: tunnel.pid not in (None, first)
                 and tunnel.status.state == TunnelState.CONNECTED, timeout=60,
                 what="a new ssh after the old one was killed")
        assert _health_through(local, desktop_remote.port) == 200
        assert TunnelState.RECONNECTING in [s.state for s in seen]
    finally:
        tunnel.stop()


def test_dropped_ssh_connection_is_restored(ssh_lab: SshLab,
                                            desktop_remote: ServeProcess) -> None:
    """The server side of the SSH connection dies (sshd session killed): reconnect."""
    local = any_free_port()
    tunnel = Tunnel(spec_for(ssh_lab, desktop_remote.port), local, backoff=(0.5,))
    try:
        assert tunnel.start().wait_connected(60).state == TunnelState.CONNECTED
        first = tunnel.pid
        assert ssh_lab.login.kill_sessions() >= 1
        wait_for(lambda: tunnel.pid not in (None, first)
                 and tunnel.status.state == TunnelState.CONNECTED, timeout=60,
                 what="the tunnel to come back after its sshd session died")
        assert _health_through(local, desktop_remote.port) == 200
    finally:
        tunnel.stop()


def test_wrong_key_fails_once_with_an_authentication_message(ssh_lab: SshLab) -> None:
    seen: list[TunnelStatus] = []
    status = _failed(spec_for(ssh_lab, 8765, target="login-wrong-key"), on_status=seen.append)
    assert status.problem is not None and status.problem.kind == "auth-refused"
    assert status.message == ("login-wrong-key accepted none of the ways ssh could sign in "
                              "(publickey); check the user name, or add your key to "
                              "ssh-agent.")
    assert TunnelState.RECONNECTING not in [s.state for s in seen]  # never retried


def test_unknown_host_key_is_reported(ssh_lab: SshLab, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    spec = spec_for(ssh_lab, 8765, options=(f"UserKnownHostsFile={empty}",))
    status = _failed(spec)
    assert status.problem.kind == "host-key-unknown", status.message


def test_changed_host_key_is_reported_as_a_possible_attack(ssh_lab: SshLab,
                                                           tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key")
    wrong = tmp_path / "known_hosts"
    key = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    wrong.write_text(f"[127.0.0.1]:{ssh_lab.login.port} {key}\n")
    spec = spec_for(ssh_lab, 8765, options=(f"UserKnownHostsFile={wrong}",))
    status = _failed(spec)
    assert status.problem.kind == "host-key-changed", status.message
    assert f'ssh-keygen -f "{wrong}" -R "[127.0.0.1]:{ssh_lab.login.port}"' in status.message


def test_ssh_port_with_nothing_listening_is_refused_and_retried(ssh_lab: SshLab) -> None:
    seen: list[TunnelStatus] = []
    status = _failed(spec_for(ssh_lab, 8765, target="127.0.0.1", ssh_port=free_port()),
                     on_status=seen.append, backoff=(0.2,), max_failures=2)
    assert status.problem.kind == "ssh-refused"
    assert "Gave up after 2 attempts" in status.message
    assert [s.attempt for s in seen if "Reconnecting in" in s.message] == [1, 2]


def test_nothing_listening_on_the_remote_port_names_the_port(ssh_lab: SshLab) -> None:
    remote = free_port()
    status = _failed(spec_for(ssh_lab, remote), ready_timeout=3)
    assert status.problem.kind == "nothing-listening", status.message
    assert f"Nothing is listening on port {remote}" in status.message


def test_nothing_listening_is_reported_as_soon_as_ssh_says_so(ssh_lab: SshLab) -> None:
    """Not after the 60 s ready timeout (what a compute node not serving used to cost)."""
    began = time.monotonic()
    status = _failed(spec_for(ssh_lab, free_port()), ready_timeout=60)
    assert status.problem.kind == "nothing-listening", status.message
    assert time.monotonic() - began < 5


def test_unknown_compute_node_is_named(ssh_lab: SshLab) -> None:
    spec = spec_for(ssh_lab, 8765, node="no-such-node.invalid")
    status = _failed(spec, ready_timeout=3)
    assert status.problem.kind == "node-not-found", status.message
    assert "could not resolve the compute node no-such-node.invalid" in status.message


def test_busy_local_port_names_the_process_holding_it(ssh_lab: SshLab) -> None:
    import socket
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        status = _failed(spec_for(ssh_lab, 8765), port)
    assert status.problem.kind == "local-port-busy"
    assert f"(PID {os.getpid()})" in status.message


@pytest.mark.parametrize("target, kind", [("login-wrong-key", "auth-refused"),
                                          ("login", "local-port-busy")])
def test_a_port_taken_while_ssh_signs_in_is_not_mistaken_for_the_remote(
        ssh_lab: SshLab, monkeypatch: pytest.MonkeyPatch, target: str, kind: str) -> None:
    """Another server takes the local port between the free-port check and ssh's bind
    (here: the check is told the port is free). Its answers are not the remote's: the
    tunnel reports what ssh says, never "connected" to someone else's data."""
    monkeypatch.setattr(tunnel_module, "is_free", lambda port: True)
    with ServerThread(DatasetRegistry(), token=None) as foreign:
        status = _failed(spec_for(ssh_lab, 8765, target=target), foreign.port)
    assert status.problem.kind == kind, status.message


def test_ssh_dies_with_the_app_even_without_a_clean_exit(ssh_lab: SshLab,
                                                         desktop_remote: ServeProcess,
                                                         tmp_path: Path) -> None:
    """The app is SIGKILLed (no atexit): PR_SET_PDEATHSIG takes its ssh down."""
    local = any_free_port()
    script = textwrap.dedent(f"""
        import sys, time
        from cellucid_desktop.remote.ssh_command import TunnelSpec
        from cellucid_desktop.remote.tunnel import Tunnel
        spec = TunnelSpec("login", {desktop_remote.port}, config_file={str(ssh_lab.config)!r})
        t = Tunnel(spec, {local}).start()
        t.wait_connected(60)
        print(t.status.state.value, t.pid, flush=True)
        time.sleep(600)
    """)
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           cwd=Path(__file__).parents[2])
    try:
        state, pid = app.stdout.readline().split()
        assert state == "connected"
        assert running(int(pid))
    finally:
        app.kill()
        app.wait()
        app.stdout.close()
    wait_for(lambda: not running(int(pid)), timeout=20, what="ssh to exit with its parent")
