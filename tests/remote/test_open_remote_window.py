"""Opening a remote file from the app under Xvfb, as a user does it: the connect dialog's
*Open a file on the host*: browse the host's folders, choose where the server runs (the
login host, or a Slurm job), Open, watch its progress, see the cells in a native window,
Disconnect (the server or job stops); the file is then on the home window's recent
remote files and opens again in one click. Against the key sshd as root (the remote
runs our venv's programs; the password + code user cannot read them) and the
password + one-time-code sshd for signing in once for browsing and opening."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.remote_shell import RUN_BASE
from tests.desktop.gui import App, run_cli, wait_visible
from tests.desktop.test_app_windows import drawn_fraction, window_pixels
from tests.helpers import wait_for
from tests.remote.mfa_sshd import MfaSshd, known_host_line
from tests.remote.sshd import SshLab
from tests.remote.test_connect_window import _fill_dialog
from tests.remote.test_sign_in_window import _question, _type_and_enter

# The remote's environment line: our venv's programs on PATH (as `source venv/bin/activate`).
ENV = f"PATH={Path(sys.executable).parent}:$PATH"


def _key_form(lab: SshLab, **fields: object) -> dict[str, object]:
    return {"mode": "open", "target": "root@127.0.0.1", "ssh_port": str(lab.login.port),
            "identity_file": str(lab.user_key),
            "options": f"UserKnownHostsFile={lab.known_hosts}\nIdentitiesOnly=yes",
            "env": ENV, **fields}


@pytest.fixture()
def run_dirs(ssh_lab: SshLab) -> Iterator[None]:
    """Remote run folders the app makes (in the lab's remote home) are removed after the
    test."""
    runs = ssh_lab.home / RUN_BASE / "runs"
    before = set(runs.iterdir()) if runs.is_dir() else set()
    yield
    for folder in (set(runs.iterdir()) if runs.is_dir() else set()) - before:
        shutil.rmtree(folder, ignore_errors=True)


def _status(app: App, *states: str) -> str:
    return wait_for(lambda: (lambda s: s if s.split(":")[0] in states else None)(
        app.eval("connect", "window.cellucidConnect.status()")), 180,
        what=f"status {' or '.join(states)}")


def _listing(app: App, path: str) -> dict:
    return wait_for(lambda: (lambda l: l if l and l["path"] == path else None)(
        app.eval("connect", "window.cellucidConnect.listing()")), 90,
        what=f"the listing of {path}")


def _cells_drawn(app: App, key: str, tmp_path: Path) -> None:
    wait_for(lambda: app.eval(key, "document.documentElement.dataset.viewerState") == "ready",
             120, what="the remote viewer ready")
    window_id = wait_visible(app.env, "Cellucid \\(remote\\)$")
    rect = app.eval(key, "(({x, y, width, height}) => [x, y, width, height])"
                         "(document.getElementById('plot').getBoundingClientRect())")
    wait_for(lambda: drawn_fraction(window_pixels(app.env, window_id, tmp_path), rect) > 0.01,
             30, what="the remote's cells drawn in the canvas")


def _servers_of(path: Path) -> list[int]:
    """PIDs of servers serving ``path`` (the remote is this machine, as root)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if entry.name.isdigit() and str(path).encode() in args and b"serve" in args:
            found.append(int(entry.name))
    return found


def test_a_remote_file_is_browsed_opened_drawn_disconnected_and_opened_again_from_home(
        launch, ssh_lab: SshLab, small_h5ad: Path, tmp_path: Path, run_dirs: None) -> None:
    folder = tmp_path / "remote data"  # a space: every value reaches the remote quoted
    folder.mkdir()
    dataset = folder / "pbmc small.h5ad"
    shutil.copy(small_h5ad, dataset)
    (folder / "notes.txt").write_text("not a dataset")
    (folder / "nested").mkdir()
    app = launch()
    _fill_dialog(app, _key_form(ssh_lab))
    app.eval("connect", f"document.getElementById('folder').value = {json.dumps(str(folder))};"
                        "document.getElementById('browse').click()")
    listing = _listing(app, str(folder))
    entries = {e["name"]: e for e in listing["entries"]}
    assert entries["nested"]["kind"] == "dir"
    assert entries["pbmc small.h5ad"]["openable"] and \
        entries["pbmc small.h5ad"]["size"] == dataset.stat().st_size
    assert not entries["notes.txt"]["openable"]
    assert listing["parent"] == str(tmp_path)
    assert app.eval("connect", "document.querySelector('#listing tr[data-kind=dir]') !== null")
    app.eval("connect", "[...document.querySelectorAll('#listing tr')].find("
                        f"r => r.dataset.path === {json.dumps(str(dataset))}).click()")
    assert app.eval("connect", "document.getElementById('remote_path').value") == str(dataset)

    app.eval("connect", "document.getElementById('start').click()")
    app.wait_window("remote:1", "the remote viewer window", timeout=180)
    status = _status(app, "connected")
    assert status == f"connected: Connected to {dataset} on root@127.0.0.1."
    _cells_drawn(app, "remote:1", tmp_path)
    servers = _servers_of(dataset)
    assert len(servers) == 1
    state = _app_state(app)
    assert [f["path"] for f in state["remote_files"]] == [str(dataset)]
    assert not state["remote_files"][0]["running"]

    app.eval("connect", "document.getElementById('disconnect').click()")
    wait_for(lambda: "remote:1" not in app.windows(), 30, what="the remote window to close")
    assert _status(app, "stopped") == "stopped: Disconnected."
    wait_for(lambda: not _servers_of(dataset), 30, what="the remote server to stop")
    # the host remembers the environment line and the folder for next time
    app.eval("connect", "document.getElementById('env').value = ''")
    app.eval("connect", "document.getElementById('browse').click()")
    _listing(app, str(folder))
    assert app.eval("connect", "document.getElementById('env').value") == ENV
    assert app.eval("connect", "document.querySelector('#last-folders button').dataset.folder") \
        == str(folder)

    # home: the recent remote file opens again in one click
    app.eval("home", "window.cellucidRefresh()")
    wait_for(lambda: app.eval("home", "document.querySelectorAll('#remote-files li').length")
             == 1, 30, what="the recent remote file on the home window")
    app.eval("home", "document.querySelector('#remote-files li button.open').click()")
    app.wait_window("remote:2", "the remote window opened from home", timeout=180)
    wait_for(lambda: app.eval("home", "document.querySelector('#remote-now li')?.dataset.state")
             == "connected", 60, what="home showing the connection")
    app.eval("home", "document.querySelector('#remote-now li button').click()")
    wait_for(lambda: "remote:2" not in app.windows(), 30, what="the window closed from home")


def _app_state(app: App) -> dict:
    """The pages' state, read through the home page's bridge."""
    app.eval("home", "window.__state = null; window.pywebview.api.state()"
                     ".then(s => { window.__state = s; })")
    return wait_for(lambda: app.eval("home", "window.__state"), 30, what="the app's state")


def test_a_slurm_run_from_the_dialog_is_queued_then_connected_and_disconnect_cancels_it(
        launch, ssh_lab: SshLab, small_h5ad: Path, slurm, run_dirs: None) -> None:
    app = launch()
    _fill_dialog(app, _key_form(ssh_lab, remote_path=str(small_h5ad), run="slurm",
                                program_open="cellucid", slurm_time="10", slurm_mem="500M",
                                env=f"export SLURM_CONF={slurm.conf}; {ENV}"))
    assert app.eval("connect", "document.getElementById('slurm-fields').hidden") is False
    app.eval("connect", "document.getElementById('start').click()")
    seen: list[str] = []

    def connected() -> bool:
        status = app.eval("connect", "window.cellucidConnect.status()")
        if not seen or seen[-1] != status:
            seen.append(status)
        return status.startswith(("connected", "failed", "server-stopped"))

    wait_for(connected, 180, interval=0.05, what="the Slurm run connected")
    assert seen[-1].startswith("connected: Connected to "), seen
    queued = [s for s in seen if s.startswith("queued: ")]
    job = re.search(r"Slurm job (\d+) on ", seen[-1]).group(1)
    # the dialog showed the job in the queue (its state, how long so far) before connected
    assert queued and all(re.match(rf"queued: (Submitted Slurm job|Job) {job} ", s)
                          for s in queued), seen
    assert slurm.job(job) == ("RUNNING", slurm.node)
    app.wait_window("remote:1", "the remote viewer window", timeout=60)
    wait_for(lambda: app.eval("remote:1", "document.documentElement.dataset.viewerState")
             == "ready", 120, what="the remote viewer ready")
    app.eval("connect", "document.getElementById('disconnect').click()")
    wait_for(lambda: slurm.job(job) == ("", ""), 60, what="the job to be cancelled")
    wait_for(lambda: "remote:1" not in app.windows(), 30, what="the remote window to close")


def test_with_a_password_and_code_host_browsing_and_opening_sign_in_once_and_a_missing_server_is_one_sentence(
        launch, mfa_sshd: MfaSshd, small_h5ad: Path, tmp_path: Path) -> None:
    data = mfa_sshd.home / "data"
    data.mkdir(exist_ok=True)
    shutil.copy(small_h5ad, data / "cells.h5ad")
    account = pwd.getpwnam(mfa_sshd.user)
    for path in (data, data / "cells.h5ad"):
        os.chown(path, account.pw_uid, account.pw_gid)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_host_line(mfa_sshd))
    app = launch()
    _fill_dialog(app, {"mode": "open", "target": f"{mfa_sshd.user}@127.0.0.1",
                       "ssh_port": str(mfa_sshd.port), "env": "",
                       "options": f"UserKnownHostsFile={known_hosts}\n"
                                  "PubkeyAuthentication=no"})
    app.eval("connect", "document.getElementById('browse-home').click()")
    _question(app, "secret", 1)
    _type_and_enter(app, mfa_sshd.password)
    _question(app, "secret", 2)
    _type_and_enter(app, mfa_sshd.code())
    home = _listing(app, str(mfa_sshd.home))
    assert "data" in {e["name"] for e in home["entries"]}
    app.eval("connect", "[...document.querySelectorAll('#listing tr')].find("
                        f"r => r.dataset.path === {json.dumps(str(data))}).click()")
    listing = _listing(app, str(data))
    assert [(e["name"], e["openable"]) for e in listing["entries"]] == [("cells.h5ad", True)]
    app.eval("connect", "[...document.querySelectorAll('#listing tr')].find("
                        f"r => r.dataset.path === {json.dumps(str(data / 'cells.h5ad'))})"
                        ".dispatchEvent(new MouseEvent('dblclick', {bubbles: true}))")
    failed = _status(app, "failed")
    assert "cellucid" in failed and "\n" not in failed  # no server there: one sentence
    assert len(app.prompts()) == 2  # browsing twice and opening asked nothing more


def test_connect_open_without_no_window_hands_its_plan_to_the_app_which_opens_the_window(
        launch, app_env, ssh_lab: SshLab, small_h5ad: Path, run_dirs: None) -> None:
    others = set(_servers_of(small_h5ad))  # servers earlier tests of the session keep
    app = launch()
    app.wait_home_ready()
    result = run_cli(app_env, "connect", "login", "-F", str(ssh_lab.config), "--open",
                     str(small_h5ad), "--env", ENV, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Opened in Cellucid Desktop: http://127.0.0.1:" in result.stdout
    # the app's progress, followed here (polled: a step shorter than a poll may not show)
    assert re.search(r"^  \[(signing-in|starting|finding-server)\] ", result.stderr, re.M), \
        result.stderr
    app.wait_window("remote:1", "the window the command asked for", timeout=60)
    wait_for(lambda: app.eval("remote:1", "document.documentElement.dataset.viewerState")
             == "ready", 120, what="the remote viewer ready")
    ours = set(_servers_of(small_h5ad)) - others
    assert len(ours) == 1  # the app, not the command, owns it now
    state = _app_state(app)
    assert [f["path"] for f in state["remote_files"]] == [str(small_h5ad)]
    assert run_cli(app_env, "quit").returncode == 0
    app.proc.wait(60)
    wait_for(lambda: not ours & set(_servers_of(small_h5ad)), 30,
             what="Quit to stop the server")



def test_a_server_kept_running_is_reattached_from_home_and_drawn_with_the_app_alive(
        launch, ssh_lab: SshLab, small_h5ad: Path, tmp_path: Path, run_dirs: None) -> None:
    dataset = tmp_path / "kept.h5ad"
    shutil.copy(small_h5ad, dataset)
    app = launch()
    _fill_dialog(app, _key_form(ssh_lab, remote_path=str(dataset)))
    app.eval("connect", "document.getElementById('keep_running').checked = true")
    app.eval("connect", "document.getElementById('start').click()")
    app.wait_window("remote:1", "the remote viewer window", timeout=180)
    _status(app, "connected")
    kept = _servers_of(dataset)
    assert len(kept) == 1
    try:
        app.eval("connect", "document.getElementById('disconnect').click()")
        wait_for(lambda: "remote:1" not in app.windows(), 30, what="the remote window to close")
        assert _status(app, "stopped") == \
            "stopped: Disconnected. The server on root@127.0.0.1 keeps running."
        assert _servers_of(dataset) == kept

        app.eval("home", "window.cellucidRefresh()")
        button = "document.querySelector('#remote-files li button.open')"
        wait_for(lambda: app.eval("home", f"{button}?.textContent") == "Reattach", 30,
                 what="home offering to reattach the kept server")
        app.eval("home", f"{button}.click()")
        app.wait_window("remote:2", "the reattached remote window", timeout=180)
        _cells_drawn(app, "remote:2", tmp_path)
        assert _servers_of(dataset) == kept  # the same server, not a new one
        assert app.proc.poll() is None
        app.eval("home", "document.querySelector('#remote-now li button').click()")
        wait_for(lambda: "remote:2" not in app.windows(), 30, what="the window closed from home")
        assert app.proc.poll() is None
    finally:
        for pid in kept:  # kept running: this test ends it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 15)
