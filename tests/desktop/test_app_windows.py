"""The real app under Xvfb: home window, file dialog, viewer windows, one instance, errors."""

from __future__ import annotations

import base64
import json
import shutil
import socket
from pathlib import Path

from PIL import Image

from tests.desktop.gui import (close_until, run_cli, screenshot, type_into_dialog,
                               visible_window, wait_visible, xdotool)
from tests.helpers import wait_for


def test_launch_shows_a_painted_home_window(launch, app_env, tmp_path):
    app = launch()
    app.wait_home_ready()
    assert wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid)
    text = app.eval("home", "document.body.innerText")
    assert "Open dataset" in text and "Recent" in text
    # What reaches the X screen is the page, not a blank window: many distinct colours.
    image = wait_for(lambda: (lambda im: im if len(im.getcolors(1 << 24)) > 20 else None)(
        screenshot(app_env, tmp_path / "home.png")), 30, what="a painted home window")
    assert image.getbbox() is not None


def window_pixels(env: dict[str, str], window_id: str, folder: Path) -> Image.Image:
    """A screenshot cropped to one window."""
    geometry = dict(line.split("=") for line in xdotool(
        env, "getwindowgeometry", "--shell", window_id).splitlines())
    x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    return screenshot(env, folder / "screen.png").crop((x, y, x + w, y + h))


def drawn_fraction(window: Image.Image, rect: list[float]) -> float:
    """Share of the canvas's pixels that are not its background (its commonest colour)."""
    x, y, w, h = (round(v) for v in rect)
    counts = window.crop((x, y, x + w, y + h)).getcolors(1 << 24)
    return 1 - max(counts)[0] / sum(n for n, _ in counts)


def test_file_chosen_in_the_real_dialog_opens_a_viewer_window(launch, app_env, small_h5ad,
                                                             tmp_path):
    app = launch()
    app.wait_home_ready()
    home = wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid)
    xdotool(app_env, "windowfocus", "--sync", home)
    xdotool(app_env, "key", "ctrl+o")  # the home window's shortcut for Open dataset…
    dialog = wait_visible(app_env, "^Open files?$")
    type_into_dialog(app_env, dialog, str(small_h5ad))
    viewer = app.wait_window("viewer:small-test", "the viewer window of the chosen file")
    assert viewer["title"] == "Small test"
    # the address the window shows now: the viewer's own state, and no token
    assert "/?dataset=small-test" in viewer["url"] and "token=" not in viewer["url"]
    window_id = wait_visible(app_env, "^Small test$")
    wait_for(lambda: app.eval("viewer:small-test", "document.documentElement.dataset.viewerState")
             == "ready", 90, what="the viewer ready")
    # The cells reach the screen: inside the canvas, many pixels differ from its background.
    rect = app.eval("viewer:small-test", "(({x, y, width, height}) => [x, y, width, height])"
                    "(document.querySelector('canvas').getBoundingClientRect())")
    wait_for(lambda: drawn_fraction(window_pixels(app_env, window_id, tmp_path), rect) > 0.01,
             30, what="cells drawn in the viewer's canvas")
    recent = wait_for(lambda: app.eval(
        "home", "[...document.querySelectorAll('#recent li')].map(li => li.dataset.path)"),
        20, what="the file in the home window's recent list")
    assert recent == [str(small_h5ad)]


def test_a_second_launch_hands_its_file_to_the_running_app_and_exits(
        launch, app_env, small_h5ad, tmp_path):
    other = tmp_path / "other.h5ad"
    shutil.copy(small_h5ad, other)
    app = launch(str(small_h5ad))
    app.wait_window("viewer:small-test")
    second = run_cli(app_env, str(other))
    assert second.returncode == 0, second.stderr
    opened = app.wait_window("viewer:small-test-2", "the second file's window in the first app")
    assert opened["title"] == "Small test"  # same uns name, its own window and id
    assert set(app.windows()) >= {"home", "viewer:small-test", "viewer:small-test-2"}
    # Opening an open file again focuses its window instead of opening another one.
    assert run_cli(app_env, "open", str(small_h5ad)).returncode == 0
    assert sum(k.startswith("viewer:") for k in app.windows()) == 2


def test_closing_a_viewer_window_releases_its_dataset(launch, app_env, small_h5ad):
    app = launch(str(small_h5ad))
    app.wait_window("viewer:small-test")
    close_until(app_env, "^Small test$", lambda: "viewer:small-test" not in app.windows())
    # The home page lists the registry's datasets: the closed one is gone from it.
    wait_for(lambda: app.eval("home", "document.getElementById('open-list').children.length")
             == 0, 20, what="the dataset released")


def test_a_corrupt_file_shows_an_error_and_the_app_keeps_running(launch, app_env, tmp_path,
                                                                  small_h5ad):
    corrupt = tmp_path / "broken.h5ad"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    gone = tmp_path / "moved-away.h5ad"
    config = Path(app_env["XDG_CONFIG_HOME"]) / "cellucid-desktop"
    config.mkdir(parents=True, exist_ok=True)
    (config / "recent.json").write_text(json.dumps([str(gone), str(small_h5ad)]))

    app = launch(str(corrupt))
    app.wait_home_ready()
    error = wait_for(lambda: app.eval(
        "home", "(document.querySelector('.notice.error') || {}).textContent"), 30,
        what="an error banner in the home window")
    assert "broken.h5ad" in error
    rows = app.eval("home", "[...document.querySelectorAll('#recent li')]"
                            ".map(li => [li.dataset.path, li.className])")
    assert rows == [[str(gone), "missing"], [str(small_h5ad), ""]]

    app.eval("home", "document.querySelector('#recent li.missing button.remove').click()")
    wait_for(lambda: json.loads((config / "recent.json").read_text()) == [str(small_h5ad)],
             20, what="the missing file removed from recent.json")
    wait_for(lambda: app.eval("home", "document.querySelectorAll('#recent li').length") == 1,
             20, what="the missing file removed from the list")
    # Still running and still able to open files.
    assert run_cli(app_env, "open", str(small_h5ad)).returncode == 0
    app.wait_window("viewer:small-test")


def test_a_busy_configured_port_falls_back_to_a_free_one_with_a_message(launch, app_env):
    config = Path(app_env["XDG_CONFIG_HOME"]) / "cellucid-desktop"
    config.mkdir(parents=True, exist_ok=True)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (config / "settings.json").write_text(json.dumps({"port": port}))
        app = launch()
        app.wait_home_ready()
        assert not app.url.endswith(f":{port}")
        notice = app.eval("home", "document.querySelector('.notice.warning').textContent")
        assert f"Port {port} is in use" in notice


def test_closing_home_keeps_the_app_and_a_second_launch_shows_it_again(launch, app_env):
    app = launch()
    app.wait_home_ready()
    close_until(app_env, "^Cellucid Desktop$", lambda: app.windows()["home"]["hidden"],
                pid=app.proc.pid)
    assert visible_window(app_env, "^Cellucid Desktop$", pid=app.proc.pid) is None
    assert app.proc.poll() is None
    second = run_cli(app_env)
    assert second.returncode == 0, second.stderr
    assert wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid)
    assert not app.windows()["home"]["hidden"]


def save_through_dialog(app, app_env, call: str, target: Path) -> dict:
    """Run a bridge call of the small-test viewer that opens the native save dialog,
    type ``target`` into the dialog, and return the call's answer."""
    app.eval("viewer:small-test", f"{call}.then(r => {{ window.__saved = r; }})")
    type_into_dialog(app_env, wait_visible(app_env, "^Save file$"), str(target))
    return wait_for(lambda: app.eval("viewer:small-test", "window.__saved || null"), 60,
                    what=f"the answer of {call}")


def test_save_file_writes_through_the_real_save_dialog(launch, app_env, small_h5ad, tmp_path):
    app = launch(str(small_h5ad))
    app.wait_window("viewer:small-test")
    payload = b"\x89PNG\r\n\x1a\nnot really a picture"
    target = tmp_path / "exported.png"
    result = save_through_dialog(
        app, app_env, f"pywebview.api.save_file('cells.png', "
                      f"'{base64.b64encode(payload).decode()}', 'image/png')", target)
    assert result == {"saved": True, "path": str(target), "error": None}
    assert target.read_bytes() == payload
    assert visible_window(app_env, "^Save file$") is None


def test_settings_window_changes_are_saved_and_applied(launch, app_env):
    app = launch()
    app.wait_home_ready()
    xdotool(app_env, "windowfocus", "--sync",
            wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid))
    xdotool(app_env, "key", "ctrl+comma")
    app.wait_window("settings", "the settings window")
    wait_for(lambda: app.eval("settings", "document.documentElement.dataset.pageState")
             == "ready", 30, what="settings page ready")
    app.eval("settings", "(() => { const s = document.getElementById('theme'); s.value = 'dark';"
                         " s.dispatchEvent(new Event('change')); })()")
    saved = Path(app_env["XDG_CONFIG_HOME"]) / "cellucid-desktop" / "settings.json"
    wait_for(lambda: saved.exists() and json.loads(saved.read_text())["theme"] == "dark", 20,
             what="the theme saved")
    wait_for(lambda: app.eval("home", "document.documentElement.dataset.theme") == "dark", 20,
             what="the home window re-themed")


def test_save_dataset_copy_writes_the_dataset_with_its_saved_selections(
        launch, app_env, small_h5ad, tmp_path):
    import anndata

    data = Path(shutil.copy(small_h5ad, tmp_path / "cells.h5ad"))
    original = data.read_bytes()
    app = launch(str(data))
    app.wait_window("viewer:small-test")
    # saved from the page itself, as the viewer does (its cookie, its own Origin)
    app.eval("viewer:small-test", """fetch("api/v1/datasets/small-test/annotations", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({key: "picked", categories: {mine: [0, 2, 4]}})})
        .then(r => r.json()).then(r => { window.__listed = r; })""")
    listed = wait_for(lambda: app.eval("viewer:small-test", "window.__listed || null"), 30,
                      what="the selection saved")
    assert listed["columns"][0]["counts"] == [3]
    target = tmp_path / "annotated copy.h5ad"
    result = save_through_dialog(app, app_env, "pywebview.api.save_dataset_copy()", target)
    assert result == {"saved": True, "path": str(target), "error": None}
    copy = anndata.read_h5ad(target)
    assert copy.obs["picked"].notna().sum() == 3 and list(copy.obs["picked"].cat.categories) == ["mine"]
    assert copy.obs["picked"].iloc[[0, 2, 4]].tolist() == ["mine"] * 3
    assert data.read_bytes() == original
