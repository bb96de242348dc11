"""`cellucid-desktop connect TARGET --open PATH --no-window` on a real pseudo-terminal
(pexpect), as a user runs it: the key's passphrase asked once for the whole session,
the server started on the login host through the environment line, the Viewer URL
printed, Ctrl+C stopping the server too (or not, with --keep-running); the choices
remembered per host."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pexpect

from tests.helpers import wait_for
from tests.remote.signin import locked_key
from tests.remote.sshd import SshLab
from tests.remote.test_remote_open import ENV, _alive, _cells

ROOT = Path(__file__).resolve().parents[2]
SERVER = re.compile(r"Server:\s+\S+ \(PID (\d+)\)")
LOG = re.compile(r"Log:\s+(\S+)/server\.log")


def _spawn(tmp_path: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    return pexpect.spawn(sys.executable, ["-m", "cellucid_desktop", "connect", *args],
                         cwd=str(ROOT), env=env, encoding="utf-8", timeout=90,
                         dimensions=(40, 250))


def _banner(term: pexpect.spawn) -> tuple[str, int, Path]:
    term.expect(r"Viewer URL:\s+(\S+)\r?\n")
    url = term.match.group(1)
    text = term.before
    return url, int(SERVER.search(text).group(1)), Path(LOG.search(text).group(1))


def test_connect_open_asks_once_starts_opens_and_ctrl_c_stops_the_server(
        ssh_lab: SshLab, small_h5ad: Path, tmp_path: Path) -> None:
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    term = _spawn(tmp_path, "login", "-F", str(config), "-i", str(key), "--open",
                  str(small_h5ad), "--env", ENV, "--no-window")
    term.expect_exact(f"Enter passphrase for key '{key}': ")
    term.sendline("right horse")
    url, pid, run = _banner(term)
    try:
        assert _cells(url) == 3000 and _alive(pid)
        assert "Enter passphrase" not in term.before  # one prompt for all of it
        term.sendintr()
        term.expect(pexpect.EOF)
        term.close()
        assert term.exitstatus == 130
        wait_for(lambda: not _alive(pid), what="the remote server to stop with Ctrl+C")
        # The environment line is remembered for the host.
        store = json.loads(next((tmp_path / "config").rglob("connections.json")).read_text())
        assert [h["env"] for h in store["hosts"].values()] == [ENV]
        assert [h["folders"] for h in store["hosts"].values()] == [[str(small_h5ad.parent)]]
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_connect_open_keep_running_leaves_the_server_and_the_next_open_reattaches(
        ssh_lab: SshLab, small_h5ad: Path, tmp_path: Path) -> None:
    args = ("login", "-F", str(ssh_lab.config), "--open", str(small_h5ad), "--env", ENV,
            "--no-window")
    term = _spawn(tmp_path, *args, "--keep-running")
    url, pid, run = _banner(term)
    try:
        term.sendintr()
        term.expect(pexpect.EOF)
        term.close()
        assert _alive(pid)
        store = json.loads(next((tmp_path / "config").rglob("connections.json")).read_text())
        assert store["files"][0]["record"]["pid"] == pid

        again = _spawn(tmp_path, *args)  # the same file again, not kept this time
        again.expect_exact("Reattaching to the server kept running for")
        url, same_pid, _ = _banner(again)
        assert same_pid == pid and _cells(url) == 3000
        again.sendintr()
        again.expect(pexpect.EOF)
        again.close()
        wait_for(lambda: not _alive(pid), what="the reattached server to stop")
        store = json.loads(next((tmp_path / "config").rglob("connections.json")).read_text())
        assert store["files"][0]["record"] is None
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
        shutil.rmtree(run, ignore_errors=True)


def test_connect_open_with_a_missing_program_prints_the_install_line(
        ssh_lab: SshLab, small_h5ad: Path, tmp_path: Path) -> None:
    term = _spawn(tmp_path, "login", "-F", str(ssh_lab.config), "--open", str(small_h5ad),
                  "--env", "PATH=/usr/bin:/bin", "--no-window")
    term.expect_exact("Error: cellucid-desktop or cellucid was not found on login")
    term.expect_exact("pip install --user cellucid-desktop")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 1


def test_a_disallowed_sbatch_option_is_refused_before_signing_in(tmp_path: Path) -> None:
    term = _spawn(tmp_path, "login", "--open", "x.h5ad", "--slurm",
                  "--sbatch-arg=--output=/tmp/x", "--no-window")
    term.expect_exact("Error: The sbatch option --output is not allowed here")
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 1


def test_connect_open_slurm_runs_our_server_in_a_job_and_ctrl_c_cancels_it(
        ssh_lab: SshLab, small_h5ad: Path, slurm, tmp_path: Path) -> None:
    term = _spawn(tmp_path, "login", "-F", str(ssh_lab.config), "--open", str(small_h5ad),
                  "--env", f"export SLURM_CONF={slurm.conf}; {ENV}", "--slurm",
                  "--time", "10", "--mem", "500M", "--sbatch-arg=--comment=cellucid-test",
                  "--no-window")
    term.expect(r"\[queued\] Submitted Slurm job (\d+) on login\.")
    job = term.match.group(1)
    term.expect(r"Viewer URL:\s+(\S+)\r?\n")
    url = term.match.group(1)
    run = Path(LOG.search(term.before).group(1))
    try:
        assert f"(Slurm job {job} on {slurm.node})" in term.before
        assert _cells(url) == 3000
        assert slurm.run("squeue", "--noheader", "--jobs", job, "--format=%k").strip() \
            == "cellucid-test"  # the extra option reached sbatch
        term.sendintr()
        term.expect(pexpect.EOF)
        term.close()
        wait_for(lambda: slurm.job(job) == ("", ""), what="the job to be cancelled")
        store = json.loads(next((tmp_path / "config").rglob("connections.json")).read_text())
        host = next(iter(store["hosts"].values()))
        assert host["where"] == "slurm" and host["slurm"]["time"] == "10"
        assert host["slurm"]["extra"] == ["--comment=cellucid-test"]
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_plain_connect_asks_password_and_code_on_the_terminal_once(
        mfa_sshd, desktop_remote, tmp_path: Path) -> None:
    """No BatchMode any more: a host wanting a password and a one-time code is signed
    in to from the terminal, once; the tunnel then rides that sign-in."""
    from tests.remote.servers import token_file
    from tests.remote.test_terminal_prompts import _config

    config = _config(tmp_path, mfa_sshd, known=True)
    failures = mfa_sshd.failed_attempts()
    term = _spawn(tmp_path, "mfa", "-F", str(config), "--remote-port",
                  str(desktop_remote.port), "--token-file",
                  str(token_file(tmp_path, desktop_remote.token)), "--no-window")
    term.expect_exact(mfa_sshd.prompts()[0])
    term.sendline(mfa_sshd.password)
    term.expect_exact(mfa_sshd.prompts()[1])
    term.sendline(mfa_sshd.code())
    term.expect(r"Viewer URL:\s+(\S+)\r?\n")
    assert _cells(term.match.group(1)) == 3000
    assert "Password:" not in term.before and "One-time" not in term.before
    term.sendintr()
    term.expect(pexpect.EOF)
    term.close()
    assert term.exitstatus == 130 and mfa_sshd.failed_attempts() == failures
