"""Only the app itself reaches the control routes: per-launch secret, no web-page Origin."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cellucid_desktop.desktop import instance
from cellucid_desktop.desktop.control import SELF_GUARDED, TEST_TOKEN_HEADER, desktop_routes
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
    server = ServerThread(DatasetRegistry(), blueprints=[desktop_routes(app, secret)],
                          self_guarded=SELF_GUARDED).start()
    yield app, server, secret
    server.stop()


def call(server: ServerThread, method: str, path: str, body: bytes | None = None,
         **headers: str) -> tuple[int, Any, bytes]:
    """A real HTTP request to the running server: (status, headers, body)."""
    if body is None and method == "POST":
        body = json.dumps({"paths": ["/data/a.h5ad"]}).encode()
    req = urllib.request.Request(f"{server.url}{path}", data=body, method=method,
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def hello(server: ServerThread, client_nonce: str = "c" * 32) -> dict[str, str]:
    status, _headers, body = call(server, "POST", "/_desktop/control/hello",
                                  json.dumps({"nonce": client_nonce}).encode())
    assert status == 200
    return json.loads(body)


def proven(server: ServerThread, secret: str, command: str, body: bytes,
           **extra: str) -> tuple[int, Any, bytes]:
    """A command sent with a proof made from ``secret`` (right or wrong)."""
    mine = "c" * 32
    theirs = hello(server, mine)["nonce"]
    return call(server, "POST", f"/_desktop/control/{command}", body, **{
        instance.NONCE_HEADER: theirs,
        instance.PROOF_HEADER: instance.client_proof(secret, theirs, mine, command, body),
        **extra})


OPEN_BODY = json.dumps({"paths": ["/data/a.h5ad"]}).encode()


def test_open_needs_a_proof_of_the_secret(served):
    app, server, secret = served
    assert call(server, "POST", "/_desktop/control/open")[0] == 403
    assert proven(server, "guess", "open", OPEN_BODY)[0] == 403
    assert app.calls == []
    assert proven(server, secret, "open", OPEN_BODY)[0] == 200
    assert app.calls == [("open", ["/data/a.h5ad"])]


def test_a_proof_serves_one_command_with_the_body_it_was_made_for(served):
    app, server, secret = served
    mine = "d" * 32
    theirs = hello(server, mine)["nonce"]
    signed = instance.client_proof(secret, theirs, mine, "open", OPEN_BODY)
    headers = {instance.NONCE_HEADER: theirs, instance.PROOF_HEADER: signed}
    other_body = json.dumps({"paths": ["/etc/shadow"]}).encode()
    assert call(server, "POST", "/_desktop/control/open", other_body, **headers)[0] == 403
    # the nonce was spent by that refusal too: a replay of the right body is refused
    assert call(server, "POST", "/_desktop/control/open", OPEN_BODY, **headers)[0] == 403
    assert app.calls == []


def test_the_server_proves_the_secret_before_the_client_sends_anything(served):
    _app, server, secret = served
    answer = hello(server, "e" * 32)
    assert answer["proof"] == instance.proof(secret, "server", "e" * 32, answer["nonce"])
    assert secret not in json.dumps(answer)


def test_a_web_page_cannot_use_the_control_routes(served):
    app, server, secret = served
    status = proven(server, secret, "quit", b"{}",
                    Origin=f"http://127.0.0.1:{server.port}")[0]
    assert status == 403 and app.calls == []
    assert call(server, "POST", "/_desktop/control/hello", b'{"nonce": "x"}',
                Origin="http://localhost:3000")[0] == 403


def test_refusals_are_a_short_plain_text_403_not_an_html_page(served):
    _app, server, secret = served
    for status, answer, body in (proven(server, "guess", "open", OPEN_BODY),
                                 proven(server, secret, "open", OPEN_BODY,
                                        Origin="http://localhost:3000")):
        assert status == 403 and answer["Content-Type"].startswith("text/plain")
        assert b"<" not in body and body.strip()


def test_the_browser_preflight_does_not_allow_the_token_header(served):
    _app, server, _secret = served
    _status, headers, _body = call(server, "OPTIONS", "/_desktop/control/quit", **{
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-cellucid-nonce, x-cellucid-proof"})
    allowed = headers.get("Access-Control-Allow-Headers", "").lower()
    assert "x-cellucid-proof" not in allowed and "authorization" not in allowed


def test_the_test_surface_exists_only_with_a_test_token(served):
    _app, server, secret = served
    assert call(server, "GET", "/__test__/windows", **{TEST_TOKEN_HEADER: "x"})[0] == 404
    with ServerThread(DatasetRegistry(), self_guarded=SELF_GUARDED, blueprints=[
            desktop_routes(RecordingApp(), secret, test_token="t0k")]) as tested:
        assert call(tested, "GET", "/__test__/windows", **{TEST_TOKEN_HEADER: "no"})[0] == 403
        status, _headers, body = call(tested, "GET", "/__test__/windows",
                                      **{TEST_TOKEN_HEADER: "t0k"})
        assert status == 200 and json.loads(body) == {"windows": []}


def test_the_app_pages_need_the_server_token_and_control_routes_refuse_get(served):
    _app, server, _secret = served
    assert call(server, "GET", "/_desktop/pages/home.html")[0] == 401
    status, headers, body = call(server, "GET", "/_desktop/pages/home.html",
                                 Authorization=f"Bearer {server.token}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"Open dataset" in body
    assert call(server, "GET", "/_desktop/control/quit")[0] == 405


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


def write_lock(pid: int, port: int, secret: str, mode: int = 0o600) -> None:
    fd = os.open(instance.lock_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": pid, "port": port, "secret": secret}, handle)
    os.chmod(instance.lock_path(), mode)


def test_a_lock_left_by_a_crashed_app_is_taken_over(served):
    _app, server, secret = served
    write_lock(2**22 + 12345, server.port, secret)
    assert instance.find_running() is None
    assert instance.claim(server.port, secret) is not None


def test_a_lock_whose_port_answers_with_another_secret_is_stale(served):
    _app, server, _secret = served
    # A live pid (ours) but the secret is not the one this server knows: not our app.
    write_lock(os.getpid(), server.port, "old-secret")
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
        instance.hand_over([str(loop)], False, running=me)
        assert app.calls == [("open", [str(loop)])]  # the app's registry says why
    finally:
        instance.release(me)


class Recorder(BaseHTTPRequestHandler):
    """Whatever answers on a reused port: records every request it gets, answers 200."""

    seen: list[bytes] = []

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        Recorder.seen.append(bytes(self.requestline, "latin-1") + bytes(self.headers)
                             + self.rfile.read(length))
        body = json.dumps({"nonce": "n" * 32, "proof": "0" * 64, "app": "cellucid-desktop",
                           "pid": os.getpid(), "results": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def impostor():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_stale_lock_pointing_at_another_listener_gets_neither_secret_nor_files(impostor):
    secret = instance.new_secret()
    write_lock(os.getpid(), impostor, secret)  # a live pid: only the challenge can tell
    assert instance.find_running() is None
    stale = instance.Instance(os.getpid(), impostor, secret)
    with pytest.raises(instance.NotOurApp):
        instance.hand_over(["/private/patient-042.h5ad"], False, stale)
    sent = b"".join(Recorder.seen)
    assert Recorder.seen and secret.encode() not in sent
    assert b"patient-042" not in sent and b"/open" not in sent
    assert instance.claim(impostor, instance.new_secret()) is not None  # taken over


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_a_lock_others_can_read_is_not_trusted(served, mode):
    _app, server, secret = served
    write_lock(os.getpid(), server.port, secret, mode)
    assert instance.read_lock() is None and instance.find_running() is None
    mine = instance.claim(server.port, secret)
    assert mine is not None
    assert stat.S_IMODE(os.stat(instance.lock_path()).st_mode) == 0o600


def test_a_lock_owned_by_another_user_is_not_trusted(served):
    _app, server, secret = served
    write_lock(os.getpid(), server.port, secret)
    os.chown(instance.lock_path(), 65534, 65534)
    assert instance.read_lock() is None and instance.find_running() is None
