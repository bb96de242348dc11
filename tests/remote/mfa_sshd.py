"""A real sshd that asks for a password and then a one-time code, as most clusters do.

PAM with ``pam_unix`` (the password; ``requisite``, so a wrong one fails before the code
is asked, as on many sites) and ``pam_oath`` (a TOTP code, as from a phone app),
keyboard-interactive only. Everything is made per instance and removed by ``stop``: a
user ``cellmfa-<random>`` with a random password and home, its OATH secret, the PAM
service ``/etc/pam.d/cellucid-mfa-<random>`` and the sshd symlink of that name (OpenSSH
9.2 has no PAMServiceName: sshd's program name is the PAM service). Two test runs at once
do not collide. Needs root and the packages of scripts/system-packages.sh.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.remote.sshd import SSHD, Sshd

PAM_DIR = Path("/etc/pam.d")
PAM_OATH = "pam_oath.so"


def require(*programs: str) -> None:
    """Fail loudly (never skip) when a system part is missing."""
    missing = [p for p in programs if shutil.which(p) is None and not Path(p).exists()]
    if missing:
        raise AssertionError(f"missing {', '.join(missing)}: run scripts/system-packages.sh")


def pam_module_installed(name: str) -> bool:
    return any(Path(d, name).exists() for d in ("/lib/x86_64-linux-gnu/security",
                                                "/lib/aarch64-linux-gnu/security",
                                                "/usr/lib/x86_64-linux-gnu/security",
                                                "/lib/security", "/usr/lib/security"))


class MfaSshd(Sshd):
    """sshd on a free loopback port asking ``user`` for ``password`` and then ``code()``."""

    def __init__(self, root: Path, name: str, host_key: Path) -> None:
        suffix = secrets.token_hex(4)
        self.user = f"cellmfa-{suffix}"
        self.service = f"cellucid-mfa-{suffix}"
        self.password = secrets.token_urlsafe(12)
        self.oath_key = secrets.token_hex(20)
        super().__init__(root, name, host_key, None)
        self.oath_file = self.root / "users.oath"
        self.program = self.root / self.service
        self.home = Path("/home") / self.user

    def auth_settings(self, authorized: Path | None) -> list[str]:
        return ["UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no",
                "PubkeyAuthentication no", "AuthenticationMethods keyboard-interactive",
                "PermitRootLogin no", "LogLevel VERBOSE"]

    def start(self) -> MfaSshd:
        require(SSHD, "useradd", "chpasswd", "oathtool")
        if not pam_module_installed(PAM_OATH):
            raise AssertionError("pam_oath is missing: run scripts/system-packages.sh "
                                 "(libpam-oath)")
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", self.user],
                       check=True, capture_output=True)
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}", text=True,
                       check=True, capture_output=True)
        self._forget_used_codes()
        (PAM_DIR / self.service).write_text(
            "auth    requisite pam_unix.so\n"
            f"auth    required  {PAM_OATH} usersfile={self.oath_file} window=5 digits=6\n"
            "account required  pam_unix.so\n"
            "session required  pam_unix.so\n")
        self.program.symlink_to(SSHD)
        super().start()
        return self

    def stop(self) -> None:
        """Stop sshd, end the user's processes (by PID), remove user, PAM file, symlink."""
        super().stop()
        self.end_user_processes()
        subprocess.run(["userdel", "--remove", self.user], capture_output=True)
        (PAM_DIR / self.service).unlink(missing_ok=True)
        self.program.unlink(missing_ok=True)

    def end_user_processes(self) -> None:
        """Everything running as the per-run user (remote commands left by tests)."""
        uid = _uid(self.user)
        for _ in range(50):
            pids = [p for p in _pids_of_uid(uid) if p != os.getpid()] if uid is not None else []
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def _forget_used_codes(self) -> None:
        """A fresh users file: pam_oath records the last code used and refuses it (and
        earlier ones) afterwards; tests sign in several times within one 30 s step."""
        self.oath_file.write_text(f"HOTP/T30/6 {self.user} - {self.oath_key}\n")
        self.oath_file.chmod(0o600)

    def code(self) -> str:
        """The current one-time code (``oathtool --totp``), usable once."""
        self._forget_used_codes()
        return _totp(self.oath_key)

    def wrong_code(self) -> str:
        """Six digits that are not a valid code now (outside pam_oath's window)."""
        now = int(time.time())
        valid = {_totp(self.oath_key, now + 30 * step) for step in range(-6, 7)}
        for step in range(1000, 1100):
            code = _totp(self.oath_key, now + 30 * step)
            if code not in valid:
                return code
        raise AssertionError("no invalid code found")

    def failed_attempts(self) -> int:
        """Failed sign-ins of the user the server has seen (what lockouts count)."""
        log = (self.root / "sshd.log").read_text(errors="replace")
        return log.count(f"Failed keyboard-interactive/pam for {self.user} ")

    def prompts(self, host: str = "127.0.0.1") -> list[str]:
        """What ssh asks, exactly: the password, then the code (OpenSSH 9.2 + pam_oath)."""
        return [f"({self.user}@{host}) Password: ",
                f"({self.user}@{host}) One-time password (OATH) for `{self.user}': "]


def _totp(key: str, at: int | None = None) -> str:
    argv = ["oathtool", "--totp"] + ([f"--now=@{at}"] if at is not None else []) + [key]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def _uid(user: str) -> int | None:
    done = subprocess.run(["id", "-u", user], capture_output=True, text=True)
    return int(done.stdout) if done.returncode == 0 else None


def _pids_of_uid(uid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def client_config(path: Path, known_hosts: Path, hosts: dict[str, tuple[int, str]],
                  extra: list[str] = ()) -> Path:
    """An ssh_config with ``Host alias`` → (port, user) on 127.0.0.1, a private
    known-hosts file and nothing from ~/.ssh (no agent; only keys given with -i)."""
    lines: list[str] = []
    for alias, (port, user) in hosts.items():
        lines += [f"Host {alias}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}"]
    lines += ["Host *", f"  UserKnownHostsFile {known_hosts}", "  GlobalKnownHostsFile /dev/null",
              "  IdentityAgent none", "  IdentitiesOnly yes", *extra, ""]
    path.write_text("\n".join(lines))
    return path


def known_host_line(sshd: Sshd) -> str:
    """The known_hosts line for ``sshd``'s host key."""
    key = Path(f"{sshd.host_key}.pub").read_text().split()[:2]
    return f"[127.0.0.1]:{sshd.port} {' '.join(key)}\n"
