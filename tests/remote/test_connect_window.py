"""The connect dialog in the real app under Xvfb: fields in, tunnel up, remote cells drawn."""

from __future__ import annotations

import json
from pathlib import Path

from cellucid_desktop.remote.connections import ConnectionStore
from tests.desktop.gui import descendants, run_cli, running, wait_visible
from tests.desktop.test_app_windows import drawn_fraction, window_pixels
from tests.helpers import wait_for
from cellucid_desktop.remote.probe import TOKEN_MISSING
from tests.remote.servers import ServeProcess, token_file
from tests.remote.sshd import SshLab


def _dialog_form(lab: SshLab, remote_port: int) -> dict[str, object]:
    """What a user types: no ssh config alias here, so every detail is a field."""
    return {"mode": "ssh", "target": "root@127.0.0.1", "where": "host",
            "remote_port": str(remote_port), "ssh_port": str(lab.login.port),
            "identity_file": str(lab.user_key),
            "options": f"UserKnownHostsFile={lab.known_hosts}\nIdentitiesOnly=yes"}


def _fill_dialog(app, form: dict[str, object]) -> None:  # noqa: ANN001 - tests.desktop.gui.App
    """Open the connect dialog from the home page and fill its fields."""
    app.wait_home_ready()
    app.eval("home", "window.pywebview.api.open_connect()")
    app.wait_window("connect", "the connect dialog")
    wait_for(lambda: app.eval("connect", "!!window.cellucidConnect"), 30,
             what="the connect page script")
    app.eval("connect", f"window.cellucidConnect.fill({json.dumps(form)})")


def test_connect_dialog_opens_a_window_drawing_the_remote_cells(
        launch, app_env, ssh_lab: SshLab, g2_remote: ServeProcess, tmp_path: Path) -> None:
    app = launch()
    _fill_dialog(app, _dialog_form(ssh_lab, g2_remote.port))
    preview = wait_for(lambda: app.eval("connect", "document.getElementById('cmd').textContent"),
                       30, what="the live command preview")
    assert preview.startswith("ssh -N -L 127.0.0.1:") and f"-p {ssh_lab.login.port}" in preview
    app.eval("connect", "document.getElementById('start').click()")
    viewer = app.wait_window("remote:1", "the remote viewer window", timeout=90)
    assert "/?dataset=remote-data" in viewer["url"]
    assert "connected" in wait_for(lambda: (lambda s: s if s.startswith("connected") else None)(
        app.eval("connect", "window.cellucidConnect.status()")), 30, what="connected status")
    wait_for(lambda: app.eval("remote:1", "document.documentElement.dataset.viewerState")
             == "ready", 90, what="the remote viewer ready")
    window_id = wait_visible(app_env, "Cellucid \\(remote\\)$")
    rect = app.eval("remote:1", "(({x, y, width, height}) => [x, y, width, height])"
                    "(document.querySelector('canvas').getBoundingClientRect())")
    wait_for(lambda: drawn_fraction(window_pixels(app_env, window_id, tmp_path), rect) > 0.01,
             30, what="the remote's cells drawn in the canvas")
    # Disconnect closes the window and stops ssh
    app.eval("connect", "document.getElementById('disconnect').click()")
    wait_for(lambda: "remote:1" not in app.windows(), 30, what="the remote window to close")


def test_connect_command_hands_the_remote_to_the_app_whose_quit_stops_ssh(
        launch, app_env, ssh_lab: SshLab, desktop_remote: ServeProcess, tmp_path: Path) -> None:
    app = launch()
    app.wait_home_ready()
    without = run_cli(app_env, "connect", "login", "-F", str(ssh_lab.config),
                      "--remote-port", str(desktop_remote.port), timeout=120)
    assert without.returncode == 1 and without.stderr.strip().splitlines()[-1] == \
        f"Error: {TOKEN_MISSING}"  # no terminal to ask on: one clear sentence
    result = run_cli(app_env, "connect", "login", "-F", str(ssh_lab.config),
                     "--remote-port", str(desktop_remote.port), "--token-file",
                     str(token_file(tmp_path, desktop_remote.token)), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Opened in Cellucid Desktop: http://127.0.0.1:" in result.stdout
    window = app.wait_window("remote:2", "the remote window opened by the command")
    # the token left the address (the viewer may have added its view state meanwhile)
    assert "/?dataset=remote-data" in window["url"] and "token=" not in window["url"]
    assert [c.spec.target for c in ConnectionStore().recent()] == ["login"]  # for the dialog
    assert desktop_remote.token not in ConnectionStore().path.read_text()  # never saved
    # the app, not the finished command, owns the tunnel: the viewer keeps working
    wait_for(lambda: app.eval("remote:2", "document.documentElement.dataset.viewerState")
             == "ready", 90, what="the remote viewer ready")
    ssh = [pid for pid in descendants(app.proc.pid)
           if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"]
    assert ssh, "the app runs the tunnel's ssh"
    assert run_cli(app_env, "quit").returncode == 0
    app.proc.wait(60)
    wait_for(lambda: not any(running(pid) for pid in ssh), 20, what="ssh gone with the app")


def test_connect_dialog_asks_for_the_token_and_takes_a_pasted_viewer_url(
        launch, app_env, desktop_remote: ServeProcess) -> None:
    app = launch()
    _fill_dialog(app, {"mode": "forwarded", "forwarded_port": str(desktop_remote.port)})
    app.eval("connect", "document.getElementById('start').click()")
    status = wait_for(lambda: (lambda s: s if s.startswith("failed") else None)(
        app.eval("connect", "window.cellucidConnect.status()")), 60, what="the refusal")
    assert status == f"failed: {TOKEN_MISSING}"
    assert app.eval("connect", "document.activeElement.id") == "token"
    pasted = f"http://127.0.0.1:{desktop_remote.port}/?dataset=remote-data&token=" \
             f"{desktop_remote.token}"
    app.eval("connect", f"document.getElementById('token').value = {json.dumps(pasted)}")
    app.eval("connect", "document.getElementById('start').click()")
    window = app.wait_window("remote:2", "the remote viewer window", timeout=90)
    assert "dataset=remote-data" in window["url"] and "token=" not in window["url"]
    wait_for(lambda: app.eval("remote:2", "document.documentElement.dataset.viewerState")
             == "ready", 90, what="the remote viewer ready")
    assert desktop_remote.token not in ConnectionStore().path.read_text()  # never saved
