"""A tunnel on a bad day, with real ssh and a real sshd of this module's own (these
tests kill, freeze, stop and restart it): ssh killed while a client uses the viewer, the
local port taken while it reconnects, a frozen link, a long outage, and the app side
asleep (stopped and continued, as a laptop is) in `connect --no-window` and in the app."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.data.synthetic import make_synthetic
from cellucid_desktop.remote.ports import any_free_port
from cellucid_desktop.remote.probe import fetch
from cellucid_desktop.remote.session import RemoteSession
from cellucid_desktop.remote.tunnel import SLEEP_GAP, Tunnel, TunnelState, TunnelStatus
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.desktop.gui import descendants, run_cli
from tests.helpers import wait_for
from tests.remote.conftest import spec_for
from tests.remote.connect_cli import running_connect, viewer_url
from tests.remote.faults import Polling, back_after
from tests.remote.servers import ServeProcess, cellucid_serve, token_file
from tests.remote.sshd import KILL, SshLab, children, thaw

STORE = "/_cellucid/anndata/remote-data.h5ad"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    """Its login sshd drops a client that stops answering for ~3 s (ClientAlive), as a
    server does with a laptop that went to sleep."""
    lab = SshLab(tmp_path_factory.mktemp("ssh-faults"),
                 sshd_extra=("ClientAliveInterval 1", "ClientAliveCountMax 2")).start()
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def big_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 MB: its genes span many RangeFile blocks, so a gene read needs the remote."""
    return make_synthetic(tmp_path_factory.mktemp("big") / "big.h5ad", 20000, 1000,
                          genes_per_cell=60, seed=3)


@pytest.fixture(scope="module")
def big_remote(big_h5ad: Path) -> Iterator[ServeProcess]:
    server = cellucid_serve(big_h5ad)
    yield server
    server.stop()


@pytest.fixture()
def session_on(lab: SshLab) -> Iterator[callable]:
    sessions: list[RemoteSession] = []

    def start(remote: ServeProcess) -> RemoteSession:
        sessions.append(RemoteSession(spec_for(lab, remote.port), token=remote.token))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def _base(url: str) -> str:
    return url.split("/?", 1)[0]


def test_ssh_killed_under_traffic_comes_back_on_the_same_port_every_time(
        session_on, g2_remote: ServeProcess) -> None:
    """The issue's case: a no-UI cellucid whose port is taken here, so the local proxy
    is in front; a client keeps reading the store through it; ssh is killed. Each
    kill leaves ssh's accepted connections in TIME_WAIT on the local port."""
    session = session_on(g2_remote)
    view = session.open()
    tunnel, port = session.tunnel, session.local_port
    assert not view.direct
    with Polling(_base(view.url) + STORE, {"Range": "bytes=0-65535",
                                           **_auth(session)}) as client:
        for kill in range(3):
            client.wait_answered(f"the client served before kill {kill + 1}")
            old = tunnel.pid
            os.kill(old, KILL)
            status = back_after(tunnel, old)
            assert status.state == TunnelState.CONNECTED, status.message
            assert tunnel.local_port == port  # the viewer URL keeps working
            client.wait_answered(f"the client served after kill {kill + 1}")
    # What the client saw meanwhile: a 502, or an answer cut short; never a hang
    assert client.failures() <= {502, "IncompleteRead", "RemoteDisconnected",
                                 "ConnectionResetError"}, client.failures()
    assert client.longest() < 30


def test_a_new_connect_right_after_the_last_gets_the_same_local_port(
        session_on, g2_remote: ServeProcess) -> None:
    """A browser had the tunnel's port open when the connection was closed: ssh's end
    of it lingers in TIME_WAIT for a minute. Connecting again must not move to another
    port (a saved viewer URL names it)."""
    first = session_on(g2_remote)
    first.open()
    port = first.local_port
    with socket.create_connection(("127.0.0.1", port), timeout=30) as browser:
        browser.sendall(b"GET /_cellucid/health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
                        % g2_remote.port)
        assert browser.recv(65536).startswith(b"HTTP/1.")
        first.close()
    again = session_on(g2_remote)
    again.open()
    assert again.local_port == port


class PortSquatter:
    """Another program on a port: it accepts connections and closes them at once."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wait_for(lambda: self._bind(port), 10, interval=0.01, what=f"port {port} to free up")
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _bind(self, port: int) -> bool:
        try:
            self.sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(10)


def _auth(session: RemoteSession) -> dict[str, str]:
    """The local proxy's own access token, as the window's cookie would carry it."""
    return {"Authorization": f"Bearer {session.proxy.server.token}"}


def _get(url: str, timeout: float = 60,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_a_port_taken_while_reconnecting_is_waited_for_and_requests_fail_cleanly(
        session_on, big_remote: ServeProcess, big_h5ad: Path) -> None:
    session = session_on(big_remote)
    view = session.open()
    tunnel, port = session.tunnel, session.local_port
    base = _base(view.url)
    gene = "/api/v1/datasets/remote-data/genes/GENE00011"
    old = tunnel.pid
    os.kill(old, KILL)
    squatter = PortSquatter(port)  # wins the port during the 1 s backoff
    try:
        wait_for(lambda: tunnel.status.attempt >= 3, 60, what="several attempts")
        status = tunnel.status
        assert status.state == TunnelState.RECONNECTING, status.message
        assert f"The local port {port} is in use" in status.message
        assert "viewer URL stays the same" in status.message
        # Meanwhile: the proxied store and the remote-file data API fail cleanly.
        assert _get(base + STORE, headers=_auth(session))[0] == 502
        code, _, body = _get(base + gene, headers=_auth(session))
        assert code == 502, body
        assert "did not answer through the tunnel" in json.loads(body)["error"]
    finally:
        squatter.close()
    status = back_after(tunnel, old)
    assert status.state == TunnelState.CONNECTED and tunnel.local_port == port
    code, headers, body = _get(base + gene, headers=_auth(session))
    assert code == 200 and int(headers["X-Remote-Bytes"]) > 0
    registry = DatasetRegistry()
    registry.add(big_h5ad, dataset_id="remote-data")
    with ServerThread(registry, token=None) as local:
        assert body == _get(local.url + gene)[2]  # the same bytes as a local read


def test_a_frozen_link_is_noticed_and_replaced_within_a_minute(
        lab: SshLab, desktop_remote: ServeProcess) -> None:
    """The sshd session carrying the tunnel is stopped (a closed lid at the other end,
    a dead Wi-Fi): nothing is answered, nothing is closed. A request in flight must
    end, and a new connection must be made while the old one stays frozen."""
    seen: list[TunnelStatus] = []
    local = any_free_port()
    tunnel = Tunnel(spec_for(lab, desktop_remote.port), local, on_status=seen.append).start()
    frozen: set[int] = set()
    try:
        assert tunnel.wait_connected(60).state == TunnelState.CONNECTED
        old = tunnel.pid
        frozen = lab.login.freeze_sessions()
        assert frozen
        began = time.monotonic()
        in_flight: list[object] = []
        request = threading.Thread(target=lambda: in_flight.append(_outcome(local)))
        request.start()
        status = back_after(tunnel, old, timeout=75)
        took = time.monotonic() - began
        assert status.state == TunnelState.CONNECTED, status.message
        assert took < 60, f"back after {took:.0f} s"
        assert any("stopped answering" in s.message for s in seen), [s.message for s in seen]
        assert fetch(local, "/_cellucid/health", host_port=desktop_remote.port,
                     timeout=10).status == 200
        request.join(15)
        assert in_flight and in_flight[0] != 200  # it failed when ssh was replaced
        print(f"frozen link: back after {took:.1f} s")
    finally:
        thaw(frozen)
        tunnel.stop()


def _outcome(port: int) -> object:
    try:
        return fetch(port, "/_cellucid/health", timeout=120).status
    except OSError as exc:
        return type(exc).__name__


def test_an_outage_longer_than_the_first_attempts_is_outlasted(
        lab: SshLab, desktop_remote: ServeProcess) -> None:
    """sshd itself is gone (a long network outage), then back on the same port. A tunnel
    that was up keeps trying; one that never came up gives up after max_failures."""
    local = any_free_port()
    tunnel = Tunnel(spec_for(lab, desktop_remote.port), local, backoff=(0.2,),
                    max_failures=2).start()
    try:
        assert tunnel.wait_connected(60).state == TunnelState.CONNECTED
        old = tunnel.pid
        lab.login.stop()
        try:
            wait_for(lambda: tunnel.status.attempt >= 6, 60, what="attempts past the limit")
            assert tunnel.status.state == TunnelState.RECONNECTING, tunnel.status.message
            assert "refused the SSH connection" in tunnel.status.message
        finally:
            lab.login.start()
        status = back_after(tunnel, old)
        assert status.state == TunnelState.CONNECTED and tunnel.local_port == local
    finally:
        tunnel.stop()


def _stop(pids: set[int] | list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def test_connect_no_window_recovers_by_itself_after_the_computer_slept(
        lab: SshLab, desktop_remote: ServeProcess, tmp_path: Path) -> None:
    """`connect --no-window` and its ssh stop (SIGSTOP) as on a sleeping laptop, and
    when they wake the old path is gone without a word (its sshd session stays frozen).
    The supervisor notices the time it lost and replaces ssh at once, well before ssh's
    keep-alives (20-30 s) would; the viewer URL stays the same."""
    with running_connect("login", "-F", str(lab.config), "--remote-port",
                         str(desktop_remote.port), "--no-window", "--token-file",
                         str(token_file(tmp_path, desktop_remote.token))) as proc:
        url = viewer_url(proc)
        assert _get(url)[0] == 200
        ssh = children(proc.pid)
        assert ssh
        app_side = [proc.pid, *ssh]
        _stop(app_side)
        frozen = lab.login.freeze_sessions()
        try:
            time.sleep(SLEEP_GAP + 3)
            thaw(app_side)
            woke = time.monotonic()
            wait_for(lambda: _get(url, timeout=5)[0] == 200, 60, interval=0.2,
                     what="the viewer URL answering again")
            took = time.monotonic() - woke
            assert took < 15, f"back {took:.0f} s after waking"
            assert set(children(proc.pid)) - set(ssh), "a new ssh"
            assert proc.poll() is None
            print(f"connect after sleep: back {took:.1f} s after waking")
        finally:
            thaw(frozen)


def _health_from(app, key: str) -> int:
    """What the window's own page gets for /_cellucid/health (a synchronous XHR)."""
    return app.eval(key, "(() => { const x = new XMLHttpRequest(); "
                         "x.open('GET', '/_cellucid/health', false); "
                         "try { x.send(); return x.status; } catch (e) { return 0; } })()")


def test_the_app_and_its_remote_window_recover_after_the_computer_slept(
        launch, app_env, lab: SshLab, desktop_remote: ServeProcess, tmp_path: Path) -> None:
    """The whole app (its windows' processes, the tray and ssh too) is stopped until
    the server drops the silent client, then continued: the tunnel comes back on its
    port by itself and the open remote window reads from the remote again."""
    app = launch()
    app.wait_home_ready()
    result = run_cli(app_env, "connect", "login", "-F", str(lab.config), "--remote-port",
                     str(desktop_remote.port), "--token-file",
                     str(token_file(tmp_path, desktop_remote.token)), timeout=120)
    assert result.returncode == 0, result.stderr
    app.wait_window("remote:1", "the remote window")
    assert _health_from(app, "remote:1") == 200
    tree = {app.proc.pid} | descendants(app.proc.pid)
    ssh = {pid for pid in tree if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"}
    assert ssh
    _stop(tree)
    try:
        wait_for(lambda: not lab.login.sessions(), 30,
                 what="sshd to drop the sleeping app's connection")
    finally:
        thaw(tree)
    woke = time.monotonic()
    wait_for(lambda: _health_from(app, "remote:1") == 200, 60, interval=0.5,
             what="the remote window reading from the remote again")
    new_ssh = {pid for pid in descendants(app.proc.pid)
               if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"}
    assert new_ssh and not new_ssh & ssh  # a new tunnel, in the same window
    print(f"app after sleep: back {time.monotonic() - woke:.1f} s after waking")
