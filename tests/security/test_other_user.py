"""Another user of this machine (a real other uid, 65534) gets 0 bytes of data from every
server we start: `serve` on a port and on a socket, the local proxy (both kinds), a
web-app server, and the desktop app's own server; guessing tokens, cookies, dataset
ids and control commands changes nothing. The same requests from `cellucid serve`
0.9.5 do hand over the data, which shows the probe would see a leak."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.proxy import EVERYTHING, LocalProxy
from cellucid_desktop.remote.session import RemoteSession
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.webapp_assets import start_webapp_server
from cellucid_desktop.server.webapp_cache import WebAppCache
from tests.desktop.conftest import app_env, launch  # noqa: F401 - fixtures
from tests.remote.conftest import desktop_remote, g2_remote, socket_remote  # noqa: F401
from tests.remote.servers import ServeProcess, SocketServe
from tests.security.other_user import guesses, leaks, probe_as_other_user
from tests.server.reference import raw_request
from tests.webapp.source import BuildSource, make_build

DATASET = "remote-data"


def target(name: str, port: int | None = None, socket: str | None = None,
           dataset: str = DATASET) -> dict:
    where = {"port": port} if port is not None else {"socket": socket}
    return {"name": name, **where, "requests": guesses(dataset, port)}


def owner_reads(port: int, token: str | None) -> bytes:
    """The positive control: the owner, with the token, gets the data listing."""
    headers = [("Authorization", f"Bearer {token}")] if token else []
    answer = raw_request(port, "GET", "/_cellucid/datasets", headers)
    assert answer.status == 200
    return answer.body


@pytest.fixture(scope="module")
def webapp_server(small_h5ad: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    source = BuildSource(make_build("build-1", marker="other-user")).start()
    try:
        cache = WebAppCache(tmp_path_factory.mktemp("webapp") / "webapp", source_url=source.url,
                            timeout=10)
        cache.fetch()
    finally:
        source.stop()
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id=DATASET)
    server = start_webapp_server(registry, cache, dataset_id=DATASET)
    yield server
    server.stop()


def test_another_user_gets_nothing_from_our_servers_but_everything_from_cellucid(
        desktop_remote: ServeProcess, socket_remote: SocketServe, g2_remote: ServeProcess,
        webapp_server) -> None:
    # the proxy of a remote without UI: built-in viewer + data API over RangeFile
    no_ui = RemoteSession(port=g2_remote.port, remote_port=g2_remote.port)
    # the proxy in front of our own (token) server: it holds that server's token
    holding = LocalProxy(desktop_remote.port, desktop_remote.port, prefixes=EVERYTHING,
                         upstream_token=desktop_remote.token).start()
    try:
        view = no_ui.open()
        assert not view.direct
        ours = [target("serve", desktop_remote.port),
                target("serve --socket", socket=socket_remote.socket),
                target("proxy (no-UI remote)", no_ui.proxy.server.port),
                target("proxy (holding a remote token)", holding.server.port),
                target("web-app server", webapp_server.port)]
        answers = probe_as_other_user([*ours, target("cellucid serve 0.9.5", g2_remote.port)])
        by_target = {t["name"]: [a for a in answers if a.target == t["name"]]
                     for t in [*ours, {"name": "cellucid serve 0.9.5"}]}
        for name in (t["name"] for t in ours):
            assert by_target[name], name
            assert leaks(by_target[name]) == [], name
            health = [a for a in by_target[name] if a.path == "/_cellucid/health"]
            assert all(DATASET not in a.body for a in health)
        socket_answers = by_target["serve --socket"]
        assert {a.error for a in socket_answers} == {"PermissionError"}  # cannot even connect
        # the probe sees a leak where there is one: cellucid serve hands the data over
        exposed = leaks(by_target["cellucid serve 0.9.5"])
        assert any(a.path == f"/_cellucid/anndata/{DATASET}.h5ad" for a in exposed)
        # ... and the owner, with the tokens, reads ours
        assert DATASET.encode() in owner_reads(desktop_remote.port, desktop_remote.token)
        assert DATASET.encode() in owner_reads(no_ui.proxy.server.port, no_ui.proxy.server.token)
        assert DATASET.encode() in owner_reads(holding.server.port, holding.server.token)
        assert DATASET.encode() in owner_reads(webapp_server.port, webapp_server.token)
    finally:
        holding.stop()
        no_ui.close()
    socket = Path(socket_remote.socket)
    assert stat.S_IMODE(socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700


def test_another_user_gets_nothing_from_the_desktop_apps_own_server(
        launch, app_env, small_h5ad: Path) -> None:  # noqa: F811 - fixtures
    app = launch(str(small_h5ad))
    window = app.wait_window("viewer:small-test", "the viewer window", timeout=90)
    assert "token=" not in window["url"]  # the native window got it without showing it
    port = int(app.url.rsplit(":", 1)[1])
    answers = probe_as_other_user([target("desktop app", port, dataset="small-test")])
    assert answers and leaks(answers) == []
    assert app.windows().keys() >= {"home", "viewer:small-test"}  # quit/open were refused
    lock = Path(app_env["XDG_STATE_HOME"]) / "cellucid-desktop" / "instance.json"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert json.loads(lock.read_text())["port"] == port
    for folder in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        mode = os.stat(Path(app_env[folder]) / "cellucid-desktop").st_mode
        assert stat.S_IMODE(mode) == 0o700, folder
