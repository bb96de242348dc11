"""Local ports: is one free, pick one, and name the program holding a busy one."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
from pathlib import Path

# Where people usually forward a Cellucid server (8765 and the next few), probed by
# "already forwarded" when the user gives no port.
COMMON_PORTS = tuple(range(8765, 8776)) + (8080, 8000, 8888, 9000)
# "In use" and "not allowed" (a privileged port, or one Windows reserves), as errno
# reports them on POSIX and as WinSock's codes on Windows.
_BUSY = {errno.EADDRINUSE, errno.EACCES, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE),
         getattr(errno, "WSAEACCES", errno.EACCES)}


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ssh -L could listen on ``host:port`` right now.

    Bound and listened on the way ssh does it: with ``SO_REUSEADDR`` on POSIX, so a port
    whose earlier connections linger in TIME_WAIT (every reconnect has some) counts as
    free and only a real listener makes it busy. On Windows ``SO_REUSEADDR`` would let us
    bind over a live listener, so there ``SO_EXCLUSIVEADDRUSE`` asks the strict question.
    """
    with socket.socket() as sock:
        exclusive = getattr(socket, "SO_EXCLUSIVEADDRUSE", None)  # Windows only
        if exclusive is not None:
            sock.setsockopt(socket.SOL_SOCKET, exclusive, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
    return True


def any_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def choose_local_port(remote_port: int, requested: int | None = None) -> int:
    """The requested port, else the remote's own (cellucid 0.9.5 refuses a remapped port
    without the proxy), else the first free one after it, else any free port."""
    if requested is not None:
        return requested
    for port in range(remote_port, min(remote_port + 50, 65536)):
        if is_free(port):
            return port
    return any_free_port()


def who_holds(port: int) -> str | None:
    """``name (PID n)`` of the process listening on local TCP ``port``, if it can be seen."""
    found = holder(port)
    return f"{found[1]} (PID {found[0]})" if found else None


def holder(port: int) -> tuple[int, str] | None:
    """PID and name of the process listening on local TCP ``port``, if it can be seen
    (/proc on Linux, lsof elsewhere; None where neither tells)."""
    if Path("/proc/net/tcp").exists():
        found = _proc_holder(port)
        if found:
            return found
    return _lsof_holder(port)


# Listening addresses (as /proc/net/tcp{,6} and lsof write them) that a connection to
# 127.0.0.1 reaches: 127.0.0.1 itself, the IPv4 wildcard, and their IPv6 forms. A
# listener on 127.0.0.2 with the same port (a "compute node" here) is not one.
_PROC_LOOPBACK = {"0100007F", "00000000", "0" * 32, "0000000000000000FFFF00000100007F"}
_LSOF_LOOPBACK = ("127.0.0.1", "*", "[::]", "[::ffff:127.0.0.1]")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port and address in _PROC_LOOPBACK:
                inodes.add(inode)
    return inodes


def _proc_holder(port: int) -> tuple[int, str] | None:
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(pid_dir.name), _describe(pid_dir)
        except OSError:  # another user's process, or it just exited
            continue
    return None


def _describe(pid_dir: Path) -> str:
    try:
        argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
        words = [a.decode(errors="replace") for a in argv if a]
        if words:
            return " ".join(words)[:120]
    except OSError:
        pass
    return (pid_dir / "comm").read_text().strip()


def _lsof_holder(port: int) -> tuple[int, str] | None:
    lsof = shutil.which("lsof")
    if not lsof:
        return None
    try:
        out = subprocess.run([lsof, "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpcn"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    pid, name = None, "?"
    for line in out.splitlines():  # p<pid>, c<command>, then n<address> per socket
        if line.startswith("p"):
            pid = int(line[1:])
        elif line.startswith("c"):
            name = line[1:]
        elif line.startswith("n") and pid is not None \
                and line[1:].rpartition(":")[0] in _LSOF_LOOPBACK:
            return pid, name
    return None
