"""Telling servers apart on a local port: cellucid 0.9.5, 0.9.0 (stub), ours, others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cellucid_desktop.remote.probe import (DESKTOP, G1_ANNDATA, G1_EXPORT, G2, HOST_REFUSED,
                                           NOT_CELLUCID, NOTHING, TOKEN_MISSING, TOKEN_REFUSED,
                                           UNSUPPORTED, find_servers, probe)
from cellucid_desktop.remote.ports import any_free_port
from cellucid_desktop.remote.tunnel import Tunnel, TunnelState
from tests.helpers import free_port
from tests.remote.conftest import spec_for
from tests.remote.g1_stub import ANNDATA, EXPORT, G1Stub
from tests.remote.servers import ServeProcess
from tests.remote.sshd import SshLab


@pytest.fixture()
def plain_http() -> Iterator[int]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_real_cellucid_095_is_recognised_with_its_dataset_and_no_ui(
        g2_remote: ServeProcess) -> None:
    result = probe(g2_remote.port)
    assert result.kind == G2 and result.version == "0.9.5"
    assert result.has_ui is False  # --no-web-ui answers 503 at /
    assert result.datasets[0]["id"] == "remote-data"
    assert result.viewer_path == "/?anndata=true"
    assert result.needs_proxy and result.is_cellucid


def test_our_desktop_serve_is_recognised_with_its_viewer(desktop_remote: ServeProcess) -> None:
    result = probe(desktop_remote.port, token=desktop_remote.token)
    assert result.kind == DESKTOP and result.server.startswith("cellucid-desktop/")
    assert result.has_ui is True and not result.needs_proxy and not result.needs_token
    assert result.viewer_path == "/?dataset=remote-data"


def test_our_serve_without_its_token_is_named_and_says_what_to_do(
        desktop_remote: ServeProcess) -> None:
    missing = probe(desktop_remote.port)
    assert missing.kind == DESKTOP and missing.message == TOKEN_MISSING
    assert missing.needs_token and missing.datasets == []  # nothing learned without it
    wrong = probe(desktop_remote.port, token="a-token-from-another-start-0000")
    assert wrong.needs_token and wrong.message == TOKEN_REFUSED


def test_cellucid_ignores_a_token_it_does_not_need(g2_remote: ServeProcess) -> None:
    result = probe(g2_remote.port, token="a-token-for-another-server-0000")
    assert result.kind == G2 and not result.needs_token


def test_421_is_retried_with_the_remote_port_in_host(g2_remote: ServeProcess) -> None:
    """Seen through a port-remapping tunnel: the remote wants its own port in Host.
    Here the 'tunnel' is the server itself and we pretend it is another port."""
    from cellucid_desktop.remote import probe as probe_module

    reply = probe_module.fetch(g2_remote.port, "/_cellucid/health", host_port=free_port())
    assert reply.status == 421
    result = probe(g2_remote.port, remote_port=g2_remote.port)
    assert result.kind == G2


@pytest.mark.parametrize("routes,kind,path", [(ANNDATA, G1_ANNDATA, "/?anndata=true"),
                                               (EXPORT, G1_EXPORT, "/")])
def test_g1_stubs_are_recognised_as_090_with_their_viewer_path(routes: dict, kind: str,
                                                               path: str) -> None:
    stub = G1Stub(routes)
    try:
        result = probe(stub.port)
    finally:
        stub.stop()
    assert result.kind == kind and result.version == "0.9.0"
    assert result.viewer_path == path
    assert result.datasets[0]["id"] in ("test", "demo-one")


def test_a_cellucid_like_server_of_unknown_generation_is_unsupported() -> None:
    health = b'{"status": "ok", "type": "anndata", "version": "2.0.0", "format": "zarr3", ' \
             b'"n_cells": 1, "n_genes": 1, "shards": 4}'
    stub = G1Stub({"/_cellucid/health": health}, http11=True, server="Cellucid/2")
    try:
        result = probe(stub.port)
    finally:
        stub.stop()
    assert result.kind == UNSUPPORTED and not result.is_cellucid
    assert "Cellucid 2.0.0, a version this app does not support" in result.message


def test_a_plain_web_server_is_not_cellucid(plain_http: int) -> None:
    result = probe(plain_http)
    assert result.kind == NOT_CELLUCID and not result.is_cellucid
    assert f"Port {plain_http} answers, but not as a Cellucid server" in result.message


def test_a_closed_port_answers_nothing() -> None:
    result = probe(free_port())
    assert result.kind == NOTHING and "connection refused" in result.message


def test_a_421_for_every_port_tried_says_what_to_do(g2_remote: ServeProcess,
                                                    ssh_lab: SshLab) -> None:
    tunnel = Tunnel(spec_for(ssh_lab, g2_remote.port), any_free_port()).start()
    try:
        assert tunnel.wait_connected(60).state == TunnelState.CONNECTED
        result = probe(tunnel.local_port, remote_port=free_port())
    finally:
        tunnel.stop()
    assert result.kind == HOST_REFUSED and not result.is_cellucid
    assert "--allowed-host" in result.message


def test_find_servers_lists_only_cellucid_ports(g2_remote: ServeProcess, plain_http: int) -> None:
    found = find_servers([plain_http, g2_remote.port, free_port()])
    assert [(r.port, r.kind) for r in found] == [(g2_remote.port, G2)]
