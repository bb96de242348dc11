"""RemoteOpen end to end against real parts: the key sshd (the login host), the real
`cellucid-desktop serve` and `cellucid serve` 0.9.5 started there by the app through
the user's environment line, the tunnel over the host's one master, and the remote
file listing. The remote user is root here (the key sshd's only user), with the lab's
own home (``ssh_lab.home``), so run folders land in its .cellucid-desktop/runs: each test
removes the ones it made."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.master import MasterPool
from cellucid_desktop.remote.opening import (LaunchPlan, OpenStatus, RemoteError, RemoteOpen,
                                             SlurmOptions)
from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.remote_files import ListError, list_dir
from cellucid_desktop.remote.remote_shell import PRUNE_DAYS, RUN_BASE
from cellucid_desktop.remote.server_launch import LaunchError
from cellucid_desktop.remote.ssh_command import HostSpec, TunnelSpec
from tests.helpers import wait_for
from tests.remote.signin import ScriptedUser, locked_key
from tests.remote.sshd import SshLab

# The remote's environment line: our venv's programs on PATH, as `source venv/bin/activate`.
ENV = f"PATH={Path(sys.executable).parent}:$PATH"


@pytest.fixture()
def pool(broker: PromptBroker) -> Iterator[MasterPool]:
    masters = MasterPool(broker)
    yield masters
    masters.close_all()


@pytest.fixture()
def openings() -> Iterator[list[RemoteOpen]]:
    """RemoteOpens a test made: closed (servers stopped) and run folders removed."""
    made: list[RemoteOpen] = []
    yield made
    for opening in made:
        opening.close(stop_server=True)
        if opening.started is not None and opening.started.run_dir:
            shutil.rmtree(opening.started.run_dir, ignore_errors=True)


def _plan(lab: SshLab, path: Path | str, **changes: object) -> LaunchPlan:
    return LaunchPlan(**{"tunnel": TunnelSpec("login", config_file=str(lab.config)),
                         "path": str(path), "env": ENV, **changes})


def _open(plan: LaunchPlan, pool: MasterPool, made: list[RemoteOpen],
          seen: list[OpenStatus] | None = None) -> RemoteOpen:
    opening = RemoteOpen(plan, masters=pool, on_status=None if seen is None else seen.append)
    made.append(opening)
    return opening


def _cells(view_url: str) -> int:
    """``n_cells`` from the view's ``/_cellucid/health``, sending the URL's token."""
    parts = urllib.parse.urlsplit(view_url)
    token = urllib.parse.parse_qs(parts.query).get("token", [""])[0]
    request = urllib.request.Request(f"{parts.scheme}://{parts.netloc}/_cellucid/health",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.load(response)["n_cells"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def test_our_server_is_started_on_a_private_socket_opened_and_stopped_on_close(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    seen: list[OpenStatus] = []
    opening = _open(_plan(ssh_lab, small_h5ad), pool, openings, seen)
    view = opening.open()
    started = opening.started
    assert started.name == "cellucid-desktop" and started.socket and started.port is None
    assert [s.phase for s in seen][:2] == ["signing-in", "finding-server"]
    assert seen[-1].phase == "connected" and view.direct
    # The token travels in a 0600 file in a 0700 run folder, never on a command line.
    run = Path(started.run_dir)
    assert run.stat().st_mode & 0o777 == 0o700
    assert Path(started.token_file).stat().st_mode & 0o777 == 0o600
    args = Path(f"/proc/{started.pid}/cmdline").read_bytes().decode().split("\0")
    assert started.token not in " ".join(args) and "--token-file" in args
    assert _cells(view.url) == 3000
    assert opening.record["socket"] == started.socket and "token" not in opening.record

    opening.close()
    wait_for(lambda: not _alive(started.pid), what="the remote server to stop")
    assert not Path(started.token_file).exists() and (run / "server.log").exists()
    assert seen[-1].phase == "stopped"


def test_old_run_folders_of_stopped_servers_are_pruned_kept_ones_stay(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    runs = ssh_lab.home / RUN_BASE / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stopped, kept, recent = (runs / f"test-{name}-{os.getpid()}" for name in
                             ("stopped", "kept", "recent"))
    for folder in (stopped, kept, recent):
        folder.mkdir()
        (folder / "server.log").write_text("old\n")
    (kept / "token").write_text("x\n")
    old = time.time() - (PRUNE_DAYS + 1) * 86400
    for folder in (stopped, kept):
        os.utime(folder, (old, old))
    try:
        _open(_plan(ssh_lab, small_h5ad), pool, openings).open()
        assert not stopped.exists() and kept.exists() and recent.exists()
    finally:
        for folder in (stopped, kept, recent):
            shutil.rmtree(folder, ignore_errors=True)


def test_cellucid_serve_is_started_on_a_port_it_picks(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    opening = _open(_plan(ssh_lab, small_h5ad, program="cellucid"), pool, openings)
    view = opening.open()
    started = opening.started
    assert started.name == "cellucid" and started.port and started.token is None
    assert _cells(view.url) == 3000
    opening.close()
    wait_for(lambda: not _alive(started.pid), what="cellucid serve to stop")


def test_a_kept_server_survives_close_and_is_reattached_from_its_record(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    first = _open(_plan(ssh_lab, small_h5ad, keep_running=True), pool, openings)
    first.open()
    record = first.record
    first.close()
    assert _alive(record["pid"])

    again = RemoteOpen.reattach(record, masters=pool)
    openings.append(again)
    view = again.open()
    assert again.started.pid == record["pid"]
    assert _cells(view.url) == 3000
    again.close()
    assert _alive(record["pid"])  # reattached servers keep running by default
    again.close(stop_server=True)
    wait_for(lambda: not _alive(record["pid"]), what="the kept server to stop")


def test_a_server_killed_remotely_is_reported_within_seconds_with_its_log(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    seen: list[OpenStatus] = []
    opening = _open(_plan(ssh_lab, small_h5ad), pool, openings, seen)
    opening.open()
    killed = time.monotonic()
    os.kill(opening.started.pid, signal.SIGTERM)
    wait_for(lambda: opening.status.phase == "server-stopped", timeout=15,
             what="the stopped server to be reported")
    took = time.monotonic() - killed
    assert took < 10, took
    status = opening.status
    assert status.message.startswith("The server on login stopped")
    assert status.detail["log_tail"], status  # the log's last lines come along
    assert opening.started.log in status.message


def test_a_missing_server_program_names_what_to_install(
        ssh_lab: SshLab, small_h5ad: Path, pool: MasterPool, openings: list) -> None:
    opening = _open(_plan(ssh_lab, small_h5ad, env="PATH=/usr/bin:/bin"), pool, openings)
    with pytest.raises(LaunchError) as failed:
        opening.open()
    assert failed.value.detail["problem"] == "server-not-found"
    assert "cellucid-desktop or cellucid was not found on login" in str(failed.value)
    assert "pip install --user cellucid-desktop" in str(failed.value)
    assert opening.status.phase == "failed"


def test_a_missing_remote_file_is_named(ssh_lab: SshLab, tmp_path: Path, pool: MasterPool,
                                        openings: list) -> None:
    opening = _open(_plan(ssh_lab, tmp_path / "nope.h5ad"), pool, openings)
    with pytest.raises(LaunchError, match=f"login has no file or folder {tmp_path}/nope.h5ad"):
        opening.open()


def test_a_server_that_dies_at_start_shows_the_end_of_its_log(
        ssh_lab: SshLab, tmp_path: Path, pool: MasterPool, openings: list) -> None:
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(b"not an HDF5 file at all")
    opening = _open(_plan(ssh_lab, broken), pool, openings)
    with pytest.raises(LaunchError) as failed:
        opening.open()
    assert failed.value.detail["problem"] == "server-died"
    assert failed.value.detail["log_tail"]
    assert str(failed.value).startswith("The server on login stopped before it was ready: "
                                        f"Error: {broken} is not an HDF5 file")
    run = Path(failed.value.detail["run_dir"])
    try:
        assert not (run / "token").exists()  # no token left behind for a dead server
    finally:
        shutil.rmtree(run)


def test_user_values_reach_the_remote_as_plain_words(
        ssh_lab: SshLab, tmp_path: Path, pool: MasterPool, openings: list) -> None:
    """A path full of shell syntax is a path, not a command."""
    odd = tmp_path / "a'b $(touch pwned) `x`; c.h5ad"
    opening = _open(_plan(ssh_lab, odd), pool, openings)
    with pytest.raises(LaunchError, match="has no file or folder"):
        opening.open()
    assert not any((place / "pwned").exists() for place in (Path.home(), ssh_lab.home, tmp_path))


def test_one_passphrase_prompt_for_start_tunnel_and_stop(
        ssh_lab: SshLab, small_h5ad: Path, broker: PromptBroker, user: ScriptedUser,
        tmp_path: Path, openings: list) -> None:
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    pool = MasterPool(broker)
    try:
        user.script("right horse")
        plan = LaunchPlan(TunnelSpec("login", config_file=str(config),
                                     identity_file=str(key)), str(small_h5ad), env=ENV)
        opening = _open(plan, pool, openings)
        opening.open()
        opening.close()
        assert user.texts == [f"Enter passphrase for key '{key}': "]  # once, for all of it
    finally:
        pool.close_all()


def test_list_dir_shows_folders_stores_and_openable_files_with_sizes(
        ssh_lab: SshLab, tmp_path: Path, pool: MasterPool) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "atlas.zarr").mkdir()
    (tmp_path / "atlas.zarr" / "zarr.json").write_text("{}")
    (tmp_path / "cells.h5ad").write_bytes(b"x" * 1234)
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "odd\nname.loom").write_bytes(b"")
    master = pool.get(HostSpec("login", config_file=str(ssh_lab.config)))
    listing = list_dir(master, str(tmp_path))
    assert listing.path == str(tmp_path) and listing.parent == str(tmp_path.parent)
    kinds = {e.name: (e.kind, e.openable) for e in listing.entries}
    assert kinds == {"sub": ("dir", False), "atlas.zarr": ("store", True),
                     "cells.h5ad": ("file", True), "notes.txt": ("file", False),
                     "odd\nname.loom": ("file", True)}
    cells = next(e for e in listing.entries if e.name == "cells.h5ad")
    assert cells.size == 1234 and abs(cells.mtime - time.time()) < 600
    assert cells.path == f"{tmp_path}/cells.h5ad"
    assert [e.kind for e in listing.entries][:2] == ["store", "dir"] or \
        [e.kind for e in listing.entries][:2] == ["dir", "store"]
    assert list_dir(master).path == str(ssh_lab.home)
    with pytest.raises(ListError, match="There is no folder"):
        list_dir(master, str(tmp_path / "missing"))
    with pytest.raises(ListError, match="is a file, not a folder"):
        list_dir(master, str(tmp_path / "cells.h5ad"))


def test_cellucid_serve_in_a_slurm_job_is_queued_tunnelled_opened_and_cancelled(
        ssh_lab: SshLab, small_h5ad: Path, slurm, pool: MasterPool, openings: list) -> None:
    seen: list[OpenStatus] = []
    plan = _plan(ssh_lab, small_h5ad, program="cellucid", where="slurm",
                 env=f"export SLURM_CONF={slurm.conf}; {ENV}",
                 slurm=SlurmOptions(time="10", mem="500M"))
    opening = _open(plan, pool, openings, seen)
    view = opening.open()
    job = opening.started.job
    assert job and opening.started.node == slurm.node and opening.started.port
    assert slurm.job(job) == ("RUNNING", slurm.node)
    queued = [s for s in seen if s.phase == "queued"]
    assert queued[0].message == f"Submitted Slurm job {job} on login."
    assert any(s.detail.get("queue_state") for s in queued)
    assert _cells(view.url) == 3000
    assert opening.record["job"] == job and opening.record["node"] == slurm.node
    assert "cellucid serve has no access token" in seen[-1].detail["warning"]
    opening.close()
    wait_for(lambda: slurm.job(job) == ("", ""), what="the job to be cancelled")


def test_a_wrong_password_fails_once_and_is_not_retried(
        mfa_sshd, broker: PromptBroker, user: ScriptedUser, pool: MasterPool,
        tmp_path: Path, openings: list) -> None:
    from tests.remote.test_master import _mfa_host

    host = _mfa_host(tmp_path, mfa_sshd)
    user.script("not the password")
    failures = mfa_sshd.failed_attempts()
    plan = LaunchPlan(TunnelSpec(host.target, config_file=host.config_file), "~/x.h5ad")
    opening = _open(plan, pool, openings)
    with pytest.raises(RemoteError, match="mfa did not accept the password"):
        opening.open()
    assert mfa_sshd.failed_attempts() == failures + 1
    assert user.texts == mfa_sshd.prompts()[:1] and opening.status.phase == "failed"


def test_without_multiplexing_one_session_holds_the_server_and_closing_it_stops_it(
        ssh_lab: SshLab, small_h5ad: Path, broker: PromptBroker, user: ScriptedUser,
        tmp_path: Path, openings: list) -> None:
    """The fallback (Windows' OpenSSH has no ControlMaster): the server's session and
    the tunnel's session each sign in once; ending the first stops the server."""
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    pool = MasterPool(broker, multiplexing=False)
    user.script("right horse", "right horse")
    plan = LaunchPlan(TunnelSpec("login", config_file=str(config), identity_file=str(key)),
                      str(small_h5ad), env=ENV)
    opening = _open(plan, pool, openings)
    view = opening.open()
    pid = opening.started.pid
    assert _cells(view.url) == 3000 and _alive(pid)
    assert len(user.asked) == 2  # once per connection: the server's, the tunnel's
    opening.close()
    wait_for(lambda: not _alive(pid), what="the held server to stop with its session")
    wait_for(lambda: not Path(opening.started.token_file).exists(),
             what="its token file to be removed")


def test_a_lost_connection_asks_once_again_with_the_reason_and_the_tunnel_comes_back(
        mfa_sshd, desktop_remote, broker: PromptBroker, user: ScriptedUser,
        pool: MasterPool, tmp_path: Path) -> None:
    """The master is the only thing that signs in: the tunnel's reconnect after a lost
    connection asks once more (saying why), never by itself in a loop."""
    from cellucid_desktop.remote.session import RemoteSession
    from cellucid_desktop.remote.tunnel import TunnelState
    from tests.remote.test_master import _mfa_host, _sign_in

    host = _mfa_host(tmp_path, mfa_sshd)
    user.script(*_sign_in(mfa_sshd))
    spec = TunnelSpec(host.target, config_file=host.config_file,
                      remote_port=desktop_remote.port)
    session = RemoteSession(spec, masters=pool, token=desktop_remote.token)
    try:
        view = session.open()
        assert _cells(view.url) == 3000 and len(user.asked) == 2
        user.script(*_sign_in(mfa_sshd))
        mfa_sshd.kill_sessions()
        wait_for(lambda: len(user.asked) == 4, timeout=60, what="the second sign-in")
        session.tunnel.wait_until({TunnelState.CONNECTED}, 60)
        assert _cells(view.url) == 3000
        assert user.asked[2].reason.startswith("The SSH connection to mfa was lost.")
        assert [r.reason for r in user.asked[:2]] == ["", ""]
        assert len(user.asked) == 4  # asked once more, not again and again
    finally:
        session.close()


def test_a_connection_lost_mid_command_is_an_error_not_a_partial_answer(
        ssh_lab: SshLab, pool: MasterPool) -> None:
    """A status whose ssh died after its first line must not read as "no log lines"."""
    from cellucid_desktop.remote.remote_shell import new_marker
    from cellucid_desktop.remote.server_launch import run_script

    master = pool.get(HostSpec("login", config_file=str(ssh_lab.config)))
    marker = new_marker()
    script = (f"printf '%s alive 0\\n' {marker}; sleep 5; printf '%s log x\\n' {marker}\n"
              ).encode()
    with pytest.raises(LaunchError) as failed:
        run_script(master, "", script, marker=marker,
                   on_reply=lambda key, value: ssh_lab.login.kill_sessions())
    assert failed.value.detail["problem"] == "connection-lost"


def test_a_remote_command_that_keeps_talking_but_never_ends_is_stopped_at_its_deadline(
        ssh_lab: SshLab, pool: MasterPool) -> None:
    """Lines that keep coming do not keep a command alive past its deadline, and the
    message says it was too slow, not that the host stopped answering."""
    from cellucid_desktop.remote.remote_shell import new_marker
    from cellucid_desktop.remote.server_launch import run_script

    master = pool.get(HostSpec("login", config_file=str(ssh_lab.config)))
    marker = new_marker()
    script = f"while :; do printf '%s progress x\\n' {marker}; sleep 0.1; done\n".encode()
    seen: list[str] = []
    began = time.monotonic()
    with pytest.raises(LaunchError) as failed:
        run_script(master, "", script, marker=marker, timeout=3,
                   on_reply=lambda key, value: seen.append(key))
    assert failed.value.detail["problem"] == "too-slow"
    assert "did not finish within 3 s" in str(failed.value)
    assert len(seen) > 5 and time.monotonic() - began < 60  # not the 60 s quiet limit


# connections.json as the previous version wrote it: a recent remote file whose server
# was kept running, its host in the saved-record shape (lists for jump and options).
OLD_CONNECTIONS = """{"saved": [], "recent": [], "hosts": {}, "files": [
 {"host": {"target": "alice@hpc", "jump": ["gw"], "ssh_port": 2222,
           "identity_file": "/k/id", "options": ["Compression=yes"], "config_file": null},
  "path": "/data/pbmc.h5ad", "where": "host", "last_used": 1.0,
  "record": {"version": 1,
             "host": {"target": "alice@hpc", "jump": ["gw"], "ssh_port": 2222,
                      "identity_file": "/k/id", "options": ["Compression=yes"],
                      "config_file": null},
             "path": "/data/pbmc.h5ad", "where": "host", "program": "cellucid-desktop",
             "name": "pbmc", "env": "", "job": null, "node": null, "pid": 4242,
             "socket": "/run/user/0/cellucid-desktop/s.sock", "port": null,
             "token_file": "/run/user/0/t", "log": "/run/user/0/log",
             "run_dir": "/run/user/0/run", "started": 1.0}}]}"""


def test_a_kept_server_saved_by_the_previous_version_still_loads_and_reattaches(
        pool: MasterPool) -> None:
    from cellucid_desktop.remote.connections import ConnectionStore

    store = ConnectionStore()
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(OLD_CONNECTIONS)
    (file,) = store.recent_files()
    host = HostSpec("alice@hpc", ("gw",), 2222, "/k/id", ("Compression=yes",))
    assert file.host == host
    saved = json.loads(OLD_CONNECTIONS)["files"][0]
    assert file.to_json() == saved  # written back with exactly the same keys

    again = RemoteOpen.reattach(file.record, masters=pool)
    assert again.plan.tunnel == TunnelSpec.on(host).validated()
    assert again.started.socket == file.record["socket"]
    assert again.plan.keep_running
