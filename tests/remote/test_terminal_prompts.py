"""The CLI's prompts on a real pseudo-terminal (pexpect): host key with its fingerprint,
password without echo, one-time code; cancelling with Ctrl+D; Ctrl+C leaving the
terminal as it was and no ssh behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pexpect

from tests.helpers import wait_for
from tests.remote.mfa_sshd import MfaSshd, client_config, known_host_line

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, mfa: MfaSshd, known: bool) -> Path:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_host_line(mfa) if known else "")
    return client_config(tmp_path / "ssh_config", known_hosts, {"mfa": (mfa.port, mfa.user)},
                         ["  PubkeyAuthentication no"])


def _spawn(config: Path, then: str = "") -> pexpect.spawn:
    """The command on a fresh pty; ``then`` runs after it in the same terminal (the
    shell traps Ctrl+C, so it survives it and reports the command's exit status)."""
    command = (f"trap : INT; {sys.executable} -m tests.remote.sign_in_cli {config} mfa; "
               f"echo exit=$?{then}")
    return pexpect.spawn("/bin/sh", ["-c", command], cwd=str(ROOT), encoding="utf-8",
                         timeout=60, dimensions=(40, 200))


def _fingerprint(mfa: MfaSshd) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{mfa.host_key}.pub"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_host_key_password_and_code_are_asked_on_the_terminal(mfa_sshd: MfaSshd,
                                                              tmp_path: Path) -> None:
    config = _config(tmp_path, mfa_sshd, known=False)
    term = _spawn(config)
    term.expect_exact(f"The authenticity of host '[127.0.0.1]:{mfa_sshd.port}")
    term.expect_exact(f"ED25519 key fingerprint is {_fingerprint(mfa_sshd)}.")
    term.expect_exact("(yes/no/[fingerprint])? ")
    term.sendline("yes")
    term.expect_exact(mfa_sshd.prompts()[0])
    term.sendline(mfa_sshd.password)
    term.expect_exact(mfa_sshd.prompts()[1])
    assert mfa_sshd.password not in term.before  # typed without echo
    term.sendline(mfa_sshd.code())
    term.expect_exact(f"remote user: {mfa_sshd.user}")
    term.expect_exact("exit=0")
    assert f"[127.0.0.1]:{mfa_sshd.port} ssh-ed25519" in (tmp_path / "known_hosts").read_text()


def test_declining_the_host_key_ends_with_one_sentence(mfa_sshd: MfaSshd,
                                                       tmp_path: Path) -> None:
    term = _spawn(_config(tmp_path, mfa_sshd, known=False))
    term.expect_exact("(yes/no/[fingerprint])? ")
    term.sendline("maybe")
    term.expect_exact("Please type yes or no: ")
    term.sendline("no")
    term.expect_exact("error: You did not accept the host key of mfa (ED25519 "
                      f"{_fingerprint(mfa_sshd)}); nothing was added to your known hosts.")
    term.expect_exact("exit=1")
    assert (tmp_path / "known_hosts").read_text() == ""


def test_ctrl_d_cancels_the_sign_in(mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    term = _spawn(_config(tmp_path, mfa_sshd, known=True))
    term.expect_exact(mfa_sshd.prompts()[0])
    term.sendeof()
    term.expect_exact("error: Sign-in to mfa was cancelled.")
    term.expect_exact("exit=1")


def test_ctrl_c_stops_the_command_restores_echo_and_leaves_no_ssh(mfa_sshd: MfaSshd,
                                                                  tmp_path: Path) -> None:
    config = _config(tmp_path, mfa_sshd, known=True)
    term = _spawn(config, then="; stty -a")
    term.expect_exact(mfa_sshd.prompts()[0])
    term.sendintr()
    term.expect_exact("Interrupted by user")
    term.expect_exact("exit=130")
    term.expect(r"\s-?echo\s")
    assert term.after.strip() == "echo", "the terminal was left without echo"
    term.expect(pexpect.EOF)
    wait_for(lambda: not _ssh_using(config), 10, what="no ssh left using the test config")


def _ssh_using(config: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(config).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
