"""The tray icon on a real XEmbed tray host (trayer): its menu shows home, and Quit quits."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.desktop.gui import (choose_from_tray_menu, close_until, running, tray_icons,
                               type_into_dialog, visible_window, wait_visible)
from tests.helpers import wait_for


def test_tray_menu_shows_home_opens_files_and_quit_leaves_nothing_running(
        launch, app_env, tray_host, small_h5ad, tmp_path):
    browser_log = tmp_path / "browser.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {browser_log}\n')
    browser.chmod(0o755)
    app_env["BROWSER"] = str(browser)  # what Python's webbrowser runs
    app = launch()
    app.wait_home_ready()
    icon = wait_for(lambda: tray_icons(app_env, tray_host), 60, what="the icon in the tray")[0]

    close_until(app_env, "^Cellucid Desktop$", lambda: app.windows()["home"]["hidden"],
                pid=app.proc.pid)
    assert visible_window(app_env, "^Cellucid Desktop$", pid=app.proc.pid) is None

    choose_from_tray_menu(app_env, tray_host, icon, "show")
    assert wait_visible(app_env, "^Cellucid Desktop$", pid=app.proc.pid)

    choose_from_tray_menu(app_env, tray_host, icon, "open_dialog")
    type_into_dialog(app_env, wait_visible(app_env, "^Open files?$"), str(small_h5ad))
    assert app.wait_window("viewer:small-test")["title"] == "Small test"
    assert wait_visible(app_env, "^Small test$")

    choose_from_tray_menu(app_env, tray_host, icon, "browser")  # $BROWSER records the URL
    opened = wait_for(lambda: browser_log.exists() and browser_log.read_text().strip(), 30,
                      what="the viewer URL handed to the web browser")
    # the browser gets the token in its first URL, as the windows do
    assert opened.startswith(app.url + "/?dataset=small-test&token=")
    with urllib.request.urlopen(opened, timeout=30) as page:
        assert page.status == 200 and b"<html" in page.read().lower()

    app.windows()  # records the app's child processes (tray, Qt WebEngine) by PID
    children = app.known_children
    assert len(children) >= 2
    choose_from_tray_menu(app_env, tray_host, icon, "quit")
    assert app.proc.wait(60) == 0
    wait_for(lambda: not any(running(pid) for pid in children), 30,
             what="every child process of the app gone")
    lock = Path(app_env["XDG_STATE_HOME"]) / "cellucid-desktop" / "instance.json"
    assert not lock.exists()
    assert "Tray: quit" in (Path(app_env["XDG_STATE_HOME"]) / "cellucid-desktop" / "log"
                            / "cellucid-desktop.log").read_text()
