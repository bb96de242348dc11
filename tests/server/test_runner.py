"""waitress in a background thread: port choice, busy ports, clean and complete stop."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path

import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import PortInUseError, ServerThread
from tests.helpers import free_port
from tests.server.reference import raw_request


@pytest.fixture(scope="module")
def registry(small_h5ad: Path) -> DatasetRegistry:
    reg = DatasetRegistry()
    reg.add(small_h5ad)
    return reg


def _port_is_free(port: int) -> bool:
    """Nothing listens there (closed connections may linger in TIME_WAIT, which every
    server's SO_REUSEADDR allows, and which does not hold a listener)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_port_zero_picks_a_free_port_and_info_reports_it(registry: DatasetRegistry) -> None:
    with ServerThread(registry, port=0) as server:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        info = raw_request(server.port, "GET", "/_cellucid/info",
                           [("Authorization", f"Bearer {server.token}")])
        assert f'"port": {server.port}'.encode() in info.body


def test_requested_port_is_used(registry: DatasetRegistry) -> None:
    port = free_port()
    with ServerThread(registry, port=port) as server:
        assert server.port == port
        assert raw_request(port, "GET", "/_cellucid/health").status == 200


def test_busy_port_raises_a_clear_error(registry: DatasetRegistry) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(PortInUseError) as err:
            ServerThread(registry, port=port).start()
    assert f"Port {port} is already in use" in err.value.strerror
    assert "--port 0" in err.value.strerror


def test_stop_frees_the_port_and_closes_kept_alive_connections(registry: DatasetRegistry) -> None:
    server = ServerThread(registry).start()
    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_cellucid/health", headers={"Host": f"127.0.0.1:{port}"})
    assert conn.getresponse().read()
    server.stop()
    server.stop()  # a second stop is harmless
    assert _port_is_free(port)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/_cellucid/health", headers={"Host": f"127.0.0.1:{port}"})
        conn.getresponse().read()
    conn.close()
    with ServerThread(registry, port=port) as again:  # the same port can be served again
        assert raw_request(again.port, "GET", "/_cellucid/health").status == 200


def test_a_host_name_binds_its_ipv4_address_only(registry: DatasetRegistry) -> None:
    with ServerThread(registry, host="localhost") as server:
        assert raw_request(server.port, "GET", "/_cellucid/health", host="localhost:{port}").status == 200
        with socket.socket(socket.AF_INET6) as sock:  # nothing on ::1 at that port
            assert sock.connect_ex(("::1", server.port)) != 0


def test_ipv6_loopback_bind_has_a_bracketed_url(registry: DatasetRegistry) -> None:
    with ServerThread(registry, host="::1") as server:
        assert server.url == f"http://[::1]:{server.port}"
        conn = http.client.HTTPConnection("::1", server.port, timeout=10)
        conn.request("GET", "/_cellucid/health", headers={"Host": f"[::1]:{server.port}"})
        assert conn.getresponse().status == 200
        conn.close()
