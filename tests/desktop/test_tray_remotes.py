"""The tray's *Recent remotes* menu: a saved connection chosen there opens its viewer."""

from __future__ import annotations

from pathlib import Path

from cellucid_desktop.desktop.connect.connections import TRAY_REMOTES, tray_remotes
from cellucid_desktop.desktop.ipc import REMOTE_FILE
from cellucid_desktop.remote.connections import Connection, ConnectionStore, RemoteFile
from cellucid_desktop.remote.ssh_command import HostSpec
from tests.desktop.gui import choose_from_tray_menu, tray_icons, xdotool
from tests.helpers import wait_for
from tests.remote.servers import desktop_serve, token_file


def test_the_menu_lists_saved_and_recent_remotes_once_each_most_recently_used_first(
        isolated_user_dirs) -> None:
    store = ConnectionStore()
    for port in range(9000, 9000 + TRAY_REMOTES + 2):
        store.note_used(Connection(f"127.0.0.1:{port}", port=port))
    store.save(Connection("Lab", port=9003))  # saved and used: listed once, by its name
    store.save(Connection("Never used", port=8000))
    store.note_used(Connection("127.0.0.1:9001", port=9001))  # used again: newest
    menu = tray_remotes(store)
    labels = [label for _key, label in menu]
    assert labels[:2] == ["127.0.0.1:9001", "127.0.0.1:9009"]
    assert "Lab — 127.0.0.1:9003 (already forwarded)" in labels
    assert len(menu) == TRAY_REMOTES and len({key for key, _ in menu}) == TRAY_REMOTES
    assert "Never used — 127.0.0.1:8000 (already forwarded)" not in labels  # oldest, cut


def test_recent_remote_files_come_first_and_say_when_their_server_still_runs(
        isolated_user_dirs) -> None:
    store = ConnectionStore()
    store.note_used(Connection("127.0.0.1:9000", port=9000))
    host = HostSpec("alice@login.example.org", ssh_port=2222)
    store.note_file(RemoteFile(host, "/data/pbmc.h5ad", last_used=1.0))
    store.note_file(RemoteFile(host, "/scratch/atlas.zarr/", "slurm", last_used=2.0,
                               record={"version": 1, "job": "42"}))
    menu = tray_remotes(store)
    assert [label for _key, label in menu] == [
        "atlas.zarr — alice@login.example.org:2222 (running)",
        "pbmc.h5ad — alice@login.example.org:2222", "127.0.0.1:9000"]
    assert menu[0][0] == f"{REMOTE_FILE}alice@login.example.org:2222\n/scratch/atlas.zarr/"


def test_a_saved_remote_chosen_in_the_tray_opens_the_remote_viewer_window(
        launch, app_env, tray_host, small_h5ad: Path, tmp_path: Path) -> None:
    remote = desktop_serve(small_h5ad)  # a real `cellucid-desktop serve`: "already forwarded"
    try:
        form = {"mode": "forwarded", "forwarded_port": str(remote.port),
                "token_file": str(token_file(tmp_path, remote.token))}  # saved: its path
        ConnectionStore().save(Connection("Lab server", port=remote.port, extra={"form": form}))
        app = launch()
        app.wait_home_ready()
        icon = wait_for(lambda: tray_icons(app_env, tray_host), 60, what="the icon in the tray")[0]

        def choose() -> bool:
            """The menu is filled once the tray says it is ready: retry until it was."""
            choose_from_tray_menu(app_env, tray_host, icon, "remotes", submenu_item=0)
            try:
                return bool(wait_for(lambda: "remote:1" in app.windows(), 15,
                                     what="the remote window"))
            except AssertionError:
                xdotool(app_env, "key", "Escape", "Escape")
                return False

        wait_for(choose, 90, interval=0, what="the saved remote started from the tray")
        window = app.wait_window("remote:1", "the remote viewer window", timeout=90)
        assert window["title"] == "Lab server — Cellucid (remote)"
        assert window["url"].startswith(f"http://127.0.0.1:{remote.port}/")
        assert "dataset=remote-data" in window["url"] and "token=" not in window["url"]
        wait_for(lambda: app.eval("remote:1", "document.documentElement.dataset.viewerState")
                 == "ready", 90, what="the remote viewer ready")
        assert ConnectionStore().recent()[0].name == "Lab server"  # used: now recent too
    finally:
        remote.stop()
