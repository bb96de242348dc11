"""Only the app itself reaches the control routes: per-launch secret, no web-page Origin."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any

import pytest

from cellucid_desktop.desktop import instance
from cellucid_desktop.desktop.control import TEST_TOKEN_HEADER, desktop_routes
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread


class RecordingApp:
    """Stands in for DesktopApp (which needs a display) so the route rules run headless."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def open_paths(self, paths: list[str], demo: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("open", paths))
        return [{"path": p, "ok": True} for p in paths]

    def show_home(self) -> None:
        self.calls.append(("show", None))

    def quit(self) -> None:
        self.calls.append(("quit", None))

    def test_windows(self) -> list[dict[str, Any]]:
        return []

    def test_eval(self, key: str, script: str) -> Any:
        return None


@pytest.fixture()
def served():
    app = RecordingApp()
    secret = instance.new_secret()
    server = ServerThread(DatasetRegistry(), blueprints=[desktop_routes(app, secret)]).start()
    yield app, server, secret
    server.stop()


def call(server: ServerThread, method: str, path: str,
         **headers: str) -> tuple[int, Any, bytes]:
    """A real HTTP request to the running server: (status, headers, body)."""
    body = json.dumps({"paths": ["/data/a.h5ad"]}).encode() if method == "POST" else None
    req = urllib.request.Request(f"{server.url}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def post(server: ServerThread, path: str, **headers: str) -> int:
    return call(server, "POST", path, **headers)[0]


def test_open_needs_the_secret(served):
    app, server, secret = served
    assert post(server, "/_desktop/control/open") == 403
    assert post(server, "/_desktop/control/open", **{"X-Cellucid-Token": "guess"}) == 403
    assert app.calls == []
    assert post(server, "/_desktop/control/open", **{"X-Cellucid-Token": secret}) == 200
    assert app.calls == [("open", ["/data/a.h5ad"])]


def test_a_web_page_cannot_use_the_secret(served):
    app, server, secret = served
    status = post(server, "/_desktop/control/quit", **{
        "X-Cellucid-Token": secret, "Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 403 and app.calls == []


def test_refusals_are_a_short_plain_text_403_not_an_html_page(served):
    _app, server, secret = served
    for headers in ({"X-Cellucid-Token": "guess"},
                    {"X-Cellucid-Token": secret, "Origin": "http://localhost:3000"}):
        status, answer, body = call(server, "POST", "/_desktop/control/open", **headers)
        assert status == 403 and answer["Content-Type"].startswith("text/plain")
        assert b"<" not in body and body.strip()


def test_the_browser_preflight_does_not_allow_the_token_header(served):
    _app, server, _secret = served
    _status, headers, _body = call(server, "OPTIONS", "/_desktop/control/quit", **{
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-cellucid-token"})
    assert "x-cellucid-token" not in headers.get("Access-Control-Allow-Headers", "").lower()


def test_the_test_surface_exists_only_with_a_test_token(served):
    _app, server, secret = served
    assert call(server, "GET", "/__test__/windows", **{TEST_TOKEN_HEADER: "x"})[0] == 404
    with ServerThread(DatasetRegistry(), blueprints=[
            desktop_routes(RecordingApp(), secret, test_token="t0k")]) as tested:
        assert call(tested, "GET", "/__test__/windows", **{TEST_TOKEN_HEADER: "no"})[0] == 403
        status, _headers, body = call(tested, "GET", "/__test__/windows",
                                      **{TEST_TOKEN_HEADER: "t0k"})
        assert status == 200 and json.loads(body) == {"windows": []}


def test_the_app_pages_are_served_and_control_routes_refuse_get(served):
    _app, server, secret = served
    status, headers, body = call(server, "GET", "/_desktop/pages/home.html")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"Open dataset" in body
    assert call(server, "GET", "/_desktop/control/quit", **{"X-Cellucid-Token": secret})[0] == 405


def test_a_second_launch_finds_the_running_app_over_http(served):
    app, server, secret = served
    me = instance.claim(server.port, secret)
    assert me is not None
    assert stat.S_IMODE(os.stat(instance.lock_path()).st_mode) == 0o600
    assert instance.find_running() == me
    assert instance.claim(server.port, instance.new_secret()) is None  # it is taken
    assert me.call("open", {"paths": ["/x.h5ad"]})["results"][0]["ok"]
    assert app.calls == [("open", ["/x.h5ad"])]
    instance.release(me)
    assert not instance.lock_path().exists()


def test_a_lock_left_by_a_crashed_app_is_taken_over(served):
    _app, server, secret = served
    dead = instance.Instance(pid=2**22 + 12345, port=server.port, secret=secret)
    instance.lock_path().write_text(
        f'{{"pid": {dead.pid}, "port": {dead.port}, "secret": "{dead.secret}"}}')
    assert instance.find_running() is None
    assert instance.claim(server.port, secret) is not None


def test_a_lock_whose_port_answers_with_another_secret_is_stale(served):
    _app, server, _secret = served
    # A live pid (ours) but the secret is not the one this server knows: not our app.
    instance.lock_path().write_text(
        f'{{"pid": {os.getpid()}, "port": {server.port}, "secret": "old-secret"}}')
    assert instance.find_running() is None
    mine = instance.claim(server.port, "new-secret")
    assert mine is not None and instance.read_lock() == mine


def test_a_link_loop_handed_to_the_running_app_is_its_to_refuse(served, tmp_path):
    app, server, secret = served
    loop = tmp_path / "loop.h5ad"
    loop.symlink_to(tmp_path / "back.h5ad")
    (tmp_path / "back.h5ad").symlink_to(loop)
    me = instance.claim(server.port, secret)
    try:
        assert instance.forward_to_running([str(loop)], False, running=me) == 0
        assert app.calls == [("open", [str(loop)])]  # the app's registry says why
    finally:
        instance.release(me)
