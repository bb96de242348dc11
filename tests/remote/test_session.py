"""Connect end to end (tunnel or forwarded port -> probe -> direct or proxied viewer URL)
against real remotes behind a real sshd."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.ports import any_free_port
from cellucid_desktop.remote.probe import DESKTOP, G2, fetch
from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.session import RemoteError, RemoteSession, TokenNeeded
from cellucid_desktop.remote.ssh_command import TunnelSpec, tunnel_argv
from tests.desktop.gui import running
from tests.helpers import wait_for
from tests.remote.conftest import spec_for
from tests.remote.servers import ServeProcess, SocketServe, cellucid_serve
from tests.remote.signin import ScriptedUser, locked_key
from tests.remote.sshd import SshLab
from tests.server.reference import raw_request

STORE = "/_cellucid/anndata/remote-data.h5ad"


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=60) as resp:
        return resp.status, dict(resp.headers), resp.read()


def _base(url: str) -> str:
    return url.split("/?", 1)[0]


def test_our_serve_through_a_remapped_tunnel_is_shown_through_the_proxy(
        ssh_lab: SshLab, desktop_remote: ServeProcess) -> None:
    session = RemoteSession(spec_for(ssh_lab, desktop_remote.port), token=desktop_remote.token)
    try:
        view = session.open()
        assert view.probe.kind == DESKTOP
        # The remote port is taken on this machine (the "remote" is local), so the
        # tunnel's local end differs and the remote refuses it directly: 421.
        assert session.local_port != desktop_remote.port
        assert raw_request(session.local_port, "GET", "/_cellucid/health").status == 421
        assert not view.direct and "/?dataset=remote-data&token=" in view.url
        assert desktop_remote.token not in view.url  # the proxy sends it; the page never sees it
        status, headers, body = _get(view.url)
        assert status == 200 and "text/html" in headers["Content-Type"]
        assert _status(_base(view.url) + "/api/v1/datasets") == 401  # the proxy's token
        assert _get(_base(view.url) + "/api/v1/datasets", session.proxy.server.token)[0] == 200
    finally:
        session.close()


def test_compute_node_form_opens_cellucid_directly_on_the_same_port(
        ssh_lab: SshLab, small_h5ad: Path) -> None:
    """The server runs on the 'node' 127.0.0.2, so the local end can keep its port."""
    remote = cellucid_serve(small_h5ad, host="127.0.0.2")
    session = RemoteSession(spec_for(ssh_lab, remote.port, node="127.0.0.2"))
    try:
        view = session.open()
        assert session.tunnel.forward.spec == f"127.0.0.1:{remote.port}:127.0.0.2:{remote.port}"
        assert view.probe.kind == G2 and view.probe.version == "0.9.5"
        assert session.local_port == remote.port and not view.probe.host_refused
        # No UI on the remote (--no-web-ui), so the proxy serves one; the data routes
        # go through to cellucid unchanged.
        assert view.probe.has_ui is False and not view.direct
        base = _base(view.url)
        assert _get(base + "/_cellucid/health")[2] == _get(
            f"http://127.0.0.1:{remote.port}/_cellucid/health")[2]
    finally:
        session.close()
        remote.stop()


def test_node_named_localhost_reaches_the_login_hosts_own_server(
        ssh_lab: SshLab, desktop_remote: ServeProcess) -> None:
    session = RemoteSession(spec_for(ssh_lab, desktop_remote.port, node="localhost"),
                            token=desktop_remote.token)
    try:
        view = session.open()
        assert session.tunnel.forward.destination == f"localhost:{desktop_remote.port}"
        assert view.probe.kind == DESKTOP
    finally:
        session.close()


def test_already_forwarded_port_is_probed_and_opened(ssh_lab: SshLab,
                                                     desktop_remote: ServeProcess) -> None:
    """The user ran ssh -L themselves; we only probe the port."""
    local = any_free_port()
    argv = tunnel_argv(spec_for(ssh_lab, desktop_remote.port), local)
    ssh = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    session = RemoteSession(port=local, remote_port=desktop_remote.port,
                            token=desktop_remote.token)
    try:
        wait_for(lambda: fetch(local, "/_cellucid/health", timeout=5).status,
                 what="the hand-made tunnel")
        view = session.open()
        assert view.probe.kind == DESKTOP
        assert view.probe.host_port == desktop_remote.port  # 421, then asked again
        assert _get(view.url)[0] == 200
    finally:
        session.close()
        ssh.terminate()
        ssh.wait()


def test_cellucid_without_ui_on_a_remapped_port_is_viewable_with_remote_data(
        ssh_lab: SshLab, g2_remote: ServeProcess, local_api: str, small_h5ad: Path) -> None:
    session = RemoteSession(spec_for(ssh_lab, g2_remote.port))
    try:
        view = session.open()
        assert raw_request(session.local_port, "GET", "/_cellucid/health").status == 421
        assert view.probe.kind == G2 and view.probe.has_ui is False
        base = _base(view.url)
        token = session.proxy.server.token  # the proxy's own: other local users lack it
        assert _status(base + STORE) == 401
        # the viewer page is ours, served locally
        status, headers, _ = _get(view.url)
        assert status == 200 and "text/html" in headers["Content-Type"]
        # the raw store goes through with Range and ETag intact
        request = urllib.request.Request(base + STORE, headers={
            "Range": "bytes=0-7", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            assert resp.status == 206 and resp.read() == small_h5ad.read_bytes()[:8]
            etag = resp.headers["ETag"]
        request = urllib.request.Request(base + STORE, headers={
            "If-None-Match": etag, "Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(request, timeout=30)
        assert not_modified.value.code == 304
        # the data API, read from the remote file through HTTP Range, equals a local read
        for path in ("/api/v1/datasets/remote-data/embeddings/X_umap",
                     "/api/v1/datasets/remote-data/obs/cell_type",
                     "/api/v1/datasets/remote-data/genes/GENE00007"):
            remote_status, remote_headers, remote_body = _get(base + path, token)
            assert remote_status == 200
            assert remote_body == _get(local_api + path)[2]
            assert int(remote_headers["X-Remote-Bytes"]) >= 0
    finally:
        session.close()


def _status(url: str) -> int:
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as err:
        return err.code


class _Plain(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_a_port_that_is_not_cellucid_is_refused_with_a_message(ssh_lab: SshLab,
                                                                 tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    session = RemoteSession(spec_for(ssh_lab, server.server_address[1]))
    try:
        with pytest.raises(RemoteError, match="not as a Cellucid server"):
            session.open()
        assert session.tunnel.pid is None  # the tunnel is closed again
    finally:
        session.close()
        server.shutdown()
        server.server_close()


def test_disconnect_while_connecting_stops_ssh_and_fails_open(ssh_lab: SshLab) -> None:
    """The user presses Disconnect while the tunnel waits for a server that never comes."""
    from tests.helpers import free_port

    session = RemoteSession(spec_for(ssh_lab, free_port()), ready_timeout=60)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(session.open, outcome))
    worker.start()
    wait_for(lambda: session.tunnel is not None and session.tunnel.pid, 30,
             what="ssh to start")
    pid = session.tunnel.pid
    session.close()
    worker.join(30)
    assert isinstance(outcome[0], RemoteError) and str(outcome[0]) == "Disconnected."
    assert not running(pid)


def _capture(call: object, into: list[BaseException]) -> None:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        into.append(exc)


def test_remote_without_ui_can_be_shown_in_the_cached_official_web_app(
        ssh_lab: SshLab, g2_remote: ServeProcess) -> None:
    """With a web-app build cached (from the web-app tests' stand-in source), the proxy
    serves it and forwards the protocol routes it reads to the remote."""
    from cellucid_desktop import paths
    from cellucid_desktop.server.webapp_cache import WebAppCache
    from tests.webapp.source import BuildSource, make_build

    source = BuildSource(make_build("build-1", marker="remote-webapp")).start()
    try:
        WebAppCache(paths.cache_dir() / "webapp", source_url=source.url, timeout=10).fetch()
    finally:
        source.stop()
    session = RemoteSession(spec_for(ssh_lab, g2_remote.port), viewer="webapp")
    try:
        view = session.open()
        assert "/?anndata=true&token=" in view.url and not view.direct
        assert b"remote-webapp" in _get(view.url)[2]
        datasets = _get(_base(view.url) + "/_cellucid/datasets", session.proxy.server.token)[2]
        assert b'"remote-data"' in datasets
    finally:
        session.close()


def test_a_remote_socket_is_forwarded_and_opened_with_its_token(
        ssh_lab: SshLab, socket_remote: SocketServe) -> None:
    """`serve --socket` on the "login node", `connect --remote-socket` on the laptop: the
    forward ends at the socket, any local port names the server, the window is direct."""
    spec = spec_for(ssh_lab, 8765, remote_socket=socket_remote.socket)
    without = RemoteSession(spec)
    with pytest.raises(TokenNeeded):
        without.open()
    session = RemoteSession(spec, token=socket_remote.token)
    try:
        view = session.open()
        assert session.tunnel.forward.spec == f"127.0.0.1:{session.local_port}:{socket_remote.socket}"
        assert view.direct and view.probe.kind == DESKTOP
        assert view.url == (f"http://127.0.0.1:{session.local_port}/?dataset=remote-data"
                            f"&token={socket_remote.token}")
        status, headers, _ = _get(view.url)
        assert status == 200 and "text/html" in headers["Content-Type"]
    finally:
        session.close()


def _taking_the_port(session: RemoteSession, taker: socket.socket, passphrase: str):
    """An answer to the passphrase prompt given while another program binds the local
    port chosen for the tunnel (after it was chosen, before ssh binds it)."""

    def answer(request: object) -> str:
        taker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ssh binds
        taker.bind(("127.0.0.1", session.local_port))
        taker.listen()
        return passphrase
    return answer


@pytest.mark.parametrize("multiplexing", [True, False], ids=["master", "single-session"])
def test_a_chosen_local_port_taken_before_ssh_binds_it_is_replaced_by_another(
        ssh_lab: SshLab, socket_remote: SocketServe, broker: PromptBroker,
        user: ScriptedUser, tmp_path: Path, multiplexing: bool) -> None:
    """Other programs (and other tunnels) pick local ports at the same time: one may
    bind the port chosen for the tunnel while the user signs in. The tunnel was never
    up, so no URL names that port yet: another is chosen and the open goes on."""
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    spec = TunnelSpec("login", remote_port=8765, remote_socket=socket_remote.socket,
                      config_file=str(config), identity_file=str(key))
    pool = MasterPool(broker, multiplexing=multiplexing)
    session = RemoteSession(spec, masters=pool, token=socket_remote.token)
    with socket.socket() as taker:
        # (a single session signs in again for the next port; a master is reused)
        user.script(_taking_the_port(session, taker, "right horse"),
                    *([] if multiplexing else ["right horse"]))
        try:
            view = session.open()
            taken = taker.getsockname()[1]
            assert session.local_port != taken
            assert view.url.startswith(f"http://127.0.0.1:{session.local_port}/")
            assert _get(view.url)[0] == 200
        finally:
            session.close()
            pool.close_all()


def test_a_requested_local_port_taken_while_signing_in_is_named_in_the_error(
        ssh_lab: SshLab, socket_remote: SocketServe, broker: PromptBroker,
        user: ScriptedUser, tmp_path: Path) -> None:
    """The port the user asked for is not changed behind their back: the error names it
    (the single session's ssh fails to bind it; its sign-in diagnosis alone said
    "port None")."""
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    port = any_free_port()
    spec = TunnelSpec("login", remote_port=8765, remote_socket=socket_remote.socket,
                      config_file=str(config), identity_file=str(key), local_port=port)
    pool = MasterPool(broker, multiplexing=False)
    session = RemoteSession(spec, masters=pool, token=socket_remote.token)
    with socket.socket() as taker:
        user.script(_taking_the_port(session, taker, "right horse"))
        try:
            with pytest.raises(RemoteError, match=f"The local port {port} is already in use "
                                                  rf"by .+ \(PID {os.getpid()}\)"):
                session.open()
        finally:
            session.close()
            pool.close_all()
