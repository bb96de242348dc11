"""A real OpenSSH server on a free loopback port, with keys and configs made per test run.

Nothing here reads or writes the user's ~/.ssh: the client gets ``-F <tmp>/ssh_config``
naming its own key and known-hosts file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from cellucid_desktop.remote.child_process import die_with_parent
from tests.helpers import free_port, wait_for

SSHD = "/usr/sbin/sshd"
KILL = 9  # signal.SIGKILL, which the portability run hides (as on Windows)


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    path.chmod(0o600)
    return path


def _banner_ready(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        return sock.recv(64).startswith(b"SSH-")


class Sshd:
    """``sshd -D -f <tmp config>``: key login for the current user (root here) only.
    Subclasses change how users sign in (``auth_settings``) and the program run."""

    program = SSHD

    def __init__(self, root: Path, name: str, host_key: Path, authorized: Path | None,
                 extra: Sequence[str] = ()) -> None:
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = host_key
        self.config = self.root / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.root / 'sshd.pid'}", "StrictModes no", "AllowTcpForwarding yes",
            "MaxStartups 50", *self.auth_settings(authorized), *extra, ""]))
        self.process: subprocess.Popen | None = None

    def auth_settings(self, authorized: Path | None) -> list[str]:
        return [f"AuthorizedKeysFile {authorized}", "PermitRootLogin prohibit-password",
                "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
                "LogLevel ERROR"]

    def start(self) -> Sshd:
        # Debian's sshd refuses to start without its privilege-separation directory,
        # which only the openssh-server service normally creates.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        # die_with_parent: a test run killed before its teardown leaves no sshd behind
        with open(self.root / "sshd.log", "ab") as log:
            self.process = subprocess.Popen([str(self.program), "-D", "-e", "-f",
                                             str(self.config)],
                                            stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log,
                                            preexec_fn=die_with_parent)
        wait_for(self._ready, what=f"sshd on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
        return _banner_ready(self.port)

    def stop(self) -> None:
        """Stop the listener, then the per-connection sessions it forked (by PID)."""
        if self.process is None or self.process.poll() is not None:
            return
        sessions = children(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)
        _signal_all(sessions, signal.SIGTERM)

    def kill_sessions(self) -> int:
        """Drop every open SSH connection but keep sshd listening (a network blip): each
        connection's sshd and the processes under it (with privilege separation the
        user's own sshd, which holds the TCP connection, is a grandchild)."""
        sessions = children(self.process.pid)
        below = [pid for session in sessions for pid in descendants(session)]
        _signal_all(sessions + below, KILL)
        return len(sessions)

    def sessions(self) -> set[int]:
        """Every process serving an open connection (each sshd session forks more)."""
        return set(descendants(self.process.pid))

    def freeze_sessions(self) -> set[int]:
        """Stop (SIGSTOP) the processes carrying the open connections, as a frozen link
        does: nothing is answered and nothing is closed. Thaw them with ``thaw``."""
        frozen = self.sessions()
        _signal_all(frozen, signal.SIGSTOP)
        return frozen


def thaw(pids: Iterable[int]) -> None:
    """Continue processes stopped by ``freeze_sessions`` (or any SIGSTOP)."""
    _signal_all(pids, signal.SIGCONT)


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def children(pid: int) -> list[int]:
    """Live (non-zombie) child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Live children of ``pid``, their children, and so on."""
    found = children(pid)
    return found + [d for child in found for d in descendants(child)]


class SshLab:
    """Two sshds (login and jump), one client key, a client config with aliases. The
    remote user's home is a folder of this lab (``home``, sshd's ``SetEnv HOME``), so
    what the app makes there (run folders, sockets) is this test run's alone, even
    when another run uses the same machine and user at the same time."""

    def __init__(self, root: Path, sshd_extra: Sequence[str] = ()) -> None:
        self.root = root
        self.home = root / "home"
        self.home.mkdir(mode=0o700, exist_ok=True)
        sshd_extra = (f"SetEnv HOME={self.home}", *sshd_extra)
        self.host_key = keygen(root / "host_ed25519")
        self.user_key = keygen(root / "id_ed25519")
        self.wrong_key = keygen(root / "wrong_ed25519")
        self.authorized = root / "authorized_keys"
        self.authorized.write_text((root / "id_ed25519.pub").read_text())
        self.login = Sshd(root, "login", self.host_key, self.authorized, sshd_extra)
        self.jump = Sshd(root, "jump", self.host_key, self.authorized)
        self.known_hosts = root / "known_hosts"
        host_pub = (root / "host_ed25519.pub").read_text().split()[:2]
        self.known_hosts.write_text("".join(
            f"[127.0.0.1]:{s.port} {' '.join(host_pub)}\n" for s in (self.login, self.jump)))
        self.config = root / "ssh_config"
        self.config.write_text("\n".join([
            "Host login", "  HostName 127.0.0.1", f"  Port {self.login.port}",
            f"  IdentityFile {self.user_key}",
            "Host jump", "  HostName 127.0.0.1", f"  Port {self.jump.port}",
            f"  IdentityFile {self.user_key}",
            "Host login-wrong-key", "  HostName 127.0.0.1", f"  Port {self.login.port}",
            f"  IdentityFile {self.wrong_key}",
            "Host *", "  User root", "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.known_hosts}", "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes", "  LogLevel ERROR", ""]))

    def start(self) -> SshLab:
        self.login.start()
        self.jump.start()
        return self

    def stop(self) -> None:
        self.login.stop()
        self.jump.stop()
