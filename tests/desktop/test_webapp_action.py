"""*Open in Cellucid web app* in the real app: the viewer's button and the tray item fetch
the web app from a local build source (tests/webapp/source.py) and open it on an origin
of its own; offline with no cache they say so and open nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.desktop.webapp_open import NO_DATASET
from cellucid_desktop.settings import UserState
from tests.desktop.gui import App, choose_from_tray_menu, run_cli, tray_icons
from tests.helpers import free_port, wait_for
from tests.webapp.source import INVENTORY, BuildSource, make_build

VIEWER = "viewer:small-test"
WEBAPP = "webapp:small-test"


@pytest.fixture
def slow_source() -> Iterator[BuildSource]:
    """A build source whose inventory takes 4 s to answer, long enough for the progress
    window to appear (it shows after 1 s)."""
    server = BuildSource(make_build("build-desk", marker="desk")).start()
    server.routes[INVENTORY].delay = 4.0
    yield server
    server.stop()


def use_source(url: str) -> None:
    """Written before launch, as the Settings window would (same isolated config dir)."""
    UserState().update_settings({"webapp_source": url})


def button_shown(app: App) -> bool:
    return app.eval(VIEWER, "!document.getElementById('webapp-section').hidden")


def page_text(app: App, key: str, element_id: str) -> str:
    return app.eval(key, f"document.getElementById({element_id!r}).textContent") or ""


def test_viewer_button_downloads_the_web_app_with_progress_and_opens_it_on_its_own_origin(
        launch, small_h5ad: Path, slow_source: BuildSource) -> None:
    use_source(slow_source.url)
    app = launch(str(small_h5ad))
    app.wait_window(VIEWER)
    wait_for(lambda: button_shown(app), 60, what="the web-app button shown in the desktop viewer")
    app.eval(VIEWER, "document.getElementById('webapp-button').click()")

    progress = wait_for(lambda: app.windows().get("webapp"), 30, what="the progress window")
    assert progress["title"].startswith("Getting the Cellucid web app")
    wait_for(lambda: app.eval(VIEWER, "document.documentElement.dataset.webappState") == "done",
             90, what="the button's action done")
    window = app.wait_window(WEBAPP, "the web-app window")
    assert "webapp" not in app.windows()  # the progress window closed itself
    assert window["title"] == "Small test — Cellucid web app"
    origin = window["url"].removesuffix("/?anndata=true")
    assert window["url"].endswith("/?anndata=true") and origin.startswith("http://127.0.0.1:")
    assert origin != app.url
    assert app.eval(WEBAPP, "document.title") == "Cellucid desk"  # the test build's index.html
    out = wait_for(lambda: (lambda t: t if t.startswith("{") else None)(
        page_text(app, WEBAPP, "out")), 60, what="the web app reading its origin's datasets")
    seen = json.loads(out)
    assert seen["ids"] == ["small-test"] and seen["status"] == 206
    assert seen["head"] == list(small_h5ad.read_bytes()[:8])
    assert {INVENTORY, "index.html", "assets/app.js"} <= set(slow_source.requests)
    app.eval("home", "window.pywebview.api.webapp_status().then((s) => { window.seen = s; }); 1")
    assert wait_for(lambda: app.eval("home", "window.seen && window.seen.state"), 30,
                    what="the progress state") == "done"
    assert app.eval(VIEWER, "document.documentElement.dataset.viewerState") != "error"

    # a second click focuses the open window: no second download, no second window
    requests = len(slow_source.requests)
    app.eval(VIEWER, "document.documentElement.dataset.webappState = '';"
                     "document.getElementById('webapp-button').click()")
    wait_for(lambda: app.eval(VIEWER, "document.documentElement.dataset.webappState") == "done",
             30, what="the second click done")
    assert len(slow_source.requests) == requests
    assert [k for k in app.windows() if k.startswith("webapp")] == [WEBAPP]


def test_offline_without_a_cache_the_tray_item_and_the_button_explain_and_open_nothing(
        launch, app_env, tray_host, small_h5ad: Path) -> None:
    use_source(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    app = launch()
    app.wait_home_ready()
    icon = wait_for(lambda: tray_icons(app_env, tray_host), 60, what="the icon in the tray")[0]

    choose_from_tray_menu(app_env, tray_host, icon, "webapp")  # no dataset open yet
    wait_for(lambda: NO_DATASET in page_text(app, "home", "notices"), 30,
             what="the no-dataset message on the home page")

    assert run_cli(app_env, "open", str(small_h5ad)).returncode == 0
    app.wait_window(VIEWER)
    choose_from_tray_menu(app_env, tray_host, icon, "webapp")
    wait_for(lambda: "Could not reach the Cellucid web app" in page_text(app, "home", "notices"),
             60, what="the offline message on the home page")

    wait_for(lambda: button_shown(app), 60, what="the web-app button")
    app.eval(VIEWER, "document.getElementById('webapp-button').click()")
    wait_for(lambda: app.eval(VIEWER, "document.documentElement.dataset.webappState")
             == "failed", 60, what="the button's action failed")
    assert "Could not reach the Cellucid web app" in page_text(app, VIEWER, "toast")
    assert not [k for k in app.windows() if k.startswith("webapp")]
    assert VIEWER in app.windows()  # the built-in viewer stays
