"""The ssh commands we run: validated fields in, argv lists (and a display) out.

One place builds every ssh command line: the supervised tunnel (``tunnel_argv``), the
authenticated master connection and the commands sent over it (``master_argv``,
``control_argv``, ``remote_command``, ``Forward``), and the single-process fallback where
multiplexing does not exist (``single_session_argv``).

User text never reaches a shell: the executed form is an argv list, and the copyable
display is ``shlex.join`` of the same list. Every field that ends up on the command line
is checked so that it cannot be read as an ssh option (leading ``-``) or split into
several words (whitespace, control characters).

Extra options are accepted only as ``Key=Value`` pairs with a key from ``ALLOWED_OPTIONS``.
Keys that run local commands (``ProxyCommand``, ``LocalCommand``, ``KnownHostsCommand``,
``PermitLocalCommand``), change what runs remotely (``RemoteCommand``, ``SessionType``),
open more forwards or bind other interfaces (``LocalForward``, ``RemoteForward``,
``DynamicForward``, ``GatewayPorts``), load libraries (``PKCS11Provider``,
``SecurityKeyProvider``), keep a process alive after we stop (``ControlPersist``,
``ForkAfterAuthentication``) or override what the supervisor relies on
(``ExitOnForwardFailure``, ``BatchMode``, ``ProxyJump``: use the jump-host field) are
refused, as is any key not on the list.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_REMOTE_PORT = 8765

# Options the supervisor needs: fail fast when the forward cannot bind, end a dead
# connection after 45-60 s (3 keep-alives 15 s apart unanswered: a backstop that comes
# clearly after the tunnel's own probe, which notices a frozen link within ~30 s and
# says so; at 10 s apart the two raced, and which one won depended on the machine's
# load), never hang on a prompt nobody can answer, and log the "channel N: open
# failed" lines (INFO level) that errors.py reads.
SUPERVISOR_OPTIONS = ("ExitOnForwardFailure=yes", "ServerAliveInterval=15",
                      "ServerAliveCountMax=3", "ConnectTimeout=10", "BatchMode=yes",
                      "LogLevel=INFO")

ALLOWED_OPTIONS = frozenset(name.lower() for name in (
    "AddressFamily", "CheckHostIP", "Ciphers", "Compression", "ConnectionAttempts",
    "ConnectTimeout", "FingerprintHash", "GSSAPIAuthentication", "GSSAPIDelegateCredentials",
    "HashKnownHosts", "HostKeyAlgorithms", "HostKeyAlias", "HostbasedAuthentication",
    "HostName", "IdentitiesOnly", "IdentityAgent", "IdentityFile", "IPQoS",
    "KbdInteractiveAuthentication", "KexAlgorithms", "LogLevel", "MACs",
    "NumberOfPasswordPrompts", "PasswordAuthentication", "Port", "PreferredAuthentications",
    "PubkeyAcceptedAlgorithms", "PubkeyAuthentication", "RekeyLimit", "ServerAliveCountMax",
    "ServerAliveInterval", "StrictHostKeyChecking", "TCPKeepAlive", "UpdateHostKeys",
    "User", "UserKnownHostsFile", "VerifyHostKeyDNS",
))

_NODE = re.compile(r"^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])$")  # name, IPv4 or [IPv6]
_OPTION = re.compile(r"^([A-Za-z][A-Za-z0-9]*)=(.+)$")


class SpecError(ValueError):
    """A field the user typed cannot be used; the message says which and why."""


def _check_word(label: str, value: str) -> str:
    """One command-line word: not empty, no leading '-', no whitespace or control chars."""
    text = value.strip()
    if not text:
        raise SpecError(f"{label} is empty; type a host such as user@cluster.example.org")
    if text.startswith("-"):
        raise SpecError(f"{label} {text!r} starts with '-', which ssh would read as an option")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise SpecError(f"{label} {text!r} contains spaces or control characters; "
                        "give a single host name or ~/.ssh/config alias")
    return text


def check_socket(path: str) -> str:
    """A remote Unix socket path as ``ssh -L`` takes it: absolute, one word, no ':', no
    longer than a socket path can be (what `serve --socket` printed)."""
    text = path.strip()
    if (not text.startswith("/") or ":" in text
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)):
        raise SpecError(f"Remote socket {path!r} must be an absolute path without spaces, "
                        "':' or control characters")
    if len(text.encode()) > MAX_REMOTE_SOCKET:
        raise SpecError(f"Remote socket {text!r} is longer than a Unix socket path can be")
    return text


def _check_port(label: str, port: int) -> int:
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise SpecError(f"{label} must be a number between 1 and 65535, not {port!r}")
    return port


def check_node(node: str) -> str:
    """The compute node, as the login node resolves it: a bare host name or IP."""
    text = _check_word("Compute node", node)
    if not _NODE.match(text):
        raise SpecError(f"Compute node {text!r} should be a bare host name or IP address "
                        "(no user@, no port; IPv6 in brackets)")
    return text


def check_option(option: str) -> str:
    """One extra ``Key=Value`` option from the allow-list (see the module docstring)."""
    text = option.strip()
    if text.startswith("-o"):
        text = text[2:].strip()
    match = _OPTION.match(text)
    if not match or any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise SpecError(f"Extra SSH option {option!r} should look like Key=Value, "
                        "e.g. ServerAliveInterval=30")
    if match.group(1).lower() not in ALLOWED_OPTIONS:
        raise SpecError(f"Extra SSH option {match.group(1)} is not allowed here; put it in "
                        "~/.ssh/config for this host instead")
    return text


def _check_path(label: str, path: str | None) -> str | None:
    """A local file path given to ssh (-i, -F): not read as an option, no control chars."""
    text = path.strip() if path else None
    if text is not None and (text.startswith("-") or any(ord(ch) < 32 for ch in text)):
        raise SpecError(f"{label} {text!r} is not a usable file path")
    return text or None


@dataclass(frozen=True)
class HostSpec:
    """Where to sign in: the SSH connection itself, without what it forwards.

    One master connection serves one (validated) HostSpec, so it is the key under which
    connections are shared: two tunnels to the same login host sign in once.
    """

    target: str
    jump: tuple[str, ...] = ()
    ssh_port: int | None = None
    identity_file: str | None = None
    options: tuple[str, ...] = ()
    config_file: str | None = None  # ssh -F, for tests and unusual setups

    def validated(self) -> HostSpec:
        """A copy with every field checked and normalised; raises SpecError."""
        jumps: list[str] = []
        for item in self.jump:
            jumps += [_check_word("Jump host", part) for part in item.split(",") if part.strip()]
        return HostSpec(
            target=_check_word("SSH target", self.target),
            jump=tuple(jumps),
            ssh_port=None if self.ssh_port is None else _check_port("SSH port", self.ssh_port),
            identity_file=_check_path("Identity file", self.identity_file),
            options=tuple(check_option(o) for o in self.options if o.strip()),
            config_file=_check_path("SSH config file", self.config_file),
        )

    def connection_args(self) -> list[str]:
        """``-F``, ``-J``, ``-p``, ``-i`` and the extra ``-o`` options (validated first),
        without the target: every command to this host repeats them."""
        spec = self.validated()
        argv: list[str] = []
        if spec.config_file:
            argv += ["-F", spec.config_file]
        if spec.jump:
            argv += ["-J", ",".join(spec.jump)]
        if spec.ssh_port is not None:
            argv += ["-p", str(spec.ssh_port)]
        if spec.identity_file:
            argv += ["-i", spec.identity_file]
        for option in spec.options:
            argv += ["-o", option]
        return argv

    def to_json(self) -> dict[str, Any]:
        """The host as saved in connections.json and a kept server's record (validated)."""
        spec = self.validated()
        return {"target": spec.target, "jump": list(spec.jump), "ssh_port": spec.ssh_port,
                "identity_file": spec.identity_file, "options": list(spec.options),
                "config_file": spec.config_file}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HostSpec:
        """The host ``to_json`` wrote, validated; SpecError/KeyError/TypeError if not."""
        return cls(str(raw["target"]), tuple(raw.get("jump") or ()), raw.get("ssh_port"),
                   raw.get("identity_file"), tuple(raw.get("options") or ()),
                   raw.get("config_file")).validated()


@dataclass(frozen=True)
class TunnelSpec:
    """What the user asked for. ``node`` set = the server runs on a compute node that
    the SSH target (the login node) reaches; ``local_port`` None = choose one;
    ``remote_socket`` = forward to that Unix socket on the target instead of a port."""

    target: str
    remote_port: int = DEFAULT_REMOTE_PORT
    local_port: int | None = None
    jump: tuple[str, ...] = ()
    node: str | None = None
    ssh_port: int | None = None
    identity_file: str | None = None
    options: tuple[str, ...] = ()
    config_file: str | None = None  # ssh -F, for tests and unusual setups
    remote_socket: str | None = None

    @property
    def host(self) -> HostSpec:
        """The connection part (what a master connection is shared by)."""
        return HostSpec(self.target, self.jump, self.ssh_port, self.identity_file,
                        self.options, self.config_file)

    @classmethod
    def on(cls, host: HostSpec) -> TunnelSpec:
        """A tunnel over ``host`` with the default forward (the inverse of ``host``)."""
        return cls(host.target, jump=host.jump, ssh_port=host.ssh_port,
                   identity_file=host.identity_file, options=host.options,
                   config_file=host.config_file)

    def validated(self) -> TunnelSpec:
        """A copy with every field checked and normalised; raises SpecError."""
        if self.remote_socket and self.node and self.node.strip():
            raise SpecError("A socket on a compute node is reached by SSH to the node itself: "
                            "give the node as the SSH target and the login host as jump host")
        host = self.host.validated()
        return TunnelSpec(
            target=host.target,
            remote_port=_check_port("Remote port", self.remote_port),
            local_port=None if self.local_port is None
            else _check_port("Local port", self.local_port),
            jump=host.jump,
            node=check_node(self.node) if self.node and self.node.strip() else None,
            ssh_port=host.ssh_port,
            identity_file=host.identity_file,
            options=host.options,
            config_file=host.config_file,
            remote_socket=check_socket(self.remote_socket) if self.remote_socket else None,
        )

    @property
    def forward_host(self) -> str:
        """Where the SSH server connects: itself, or the compute node."""
        return self.node or "127.0.0.1"

    def forward(self, local_port: int) -> Forward:
        """The forward from ``127.0.0.1:local_port``: to the server's port, or its socket."""
        if self.remote_socket:
            return Forward.unix(local_port, self.remote_socket)
        return Forward.tcp(local_port, self.forward_host, self.remote_port)


def tunnel_argv(spec: TunnelSpec, local_port: int, *, supervised: bool = True,
                ssh: str = "ssh") -> list[str]:
    """The ssh argv for ``spec`` forwarding ``127.0.0.1:local_port``.

    ``supervised`` adds the options the supervisor relies on (no prompts, fail fast); the
    display for a terminal leaves them out so passwords and 2FA prompts work there.
    """
    spec = spec.validated()
    _check_port("Local port", local_port)
    argv = [ssh, "-N", "-L", spec.forward(local_port).spec]
    if supervised:
        argv += _options(SUPERVISOR_OPTIONS)
    return [*argv, *spec.host.connection_args(), spec.target]


def display_command(spec: TunnelSpec, local_port: int) -> str:
    """The copyable command to run in a terminal (where passwords and 2FA work)."""
    return shlex.join(tunnel_argv(spec, local_port, supervised=False))


def server_command(data_path: str, remote_port: int = DEFAULT_REMOTE_PORT, *,
                   program: str = "cellucid", offline: bool = False,
                   socket: str | None = None) -> str:
    """The command that starts the server on the remote side, shell-quoted.

    ``program`` is ``cellucid`` (0.9.5; ``offline`` adds ``--no-web-ui`` for a node without
    internet, since 0.9.5 downloads its UI at every start) or ``cellucid-desktop``
    (``socket``: serve on that Unix socket instead of the port).
    """
    if program not in ("cellucid", "cellucid-desktop"):
        raise SpecError(f"Unknown server program {program!r}")
    if socket and program == "cellucid-desktop":
        return shlex.join([program, "serve", data_path, "--no-browser", "--socket", socket])
    argv = [program, "serve", data_path, "--no-browser", "--port", str(remote_port)]
    if offline and program == "cellucid":
        argv.append("--no-web-ui")
    return shlex.join(argv)


def _options(options: Sequence[str]) -> list[str]:
    return [word for option in options for word in ("-o", option)]


# The master connection (remote/master.py). It may prompt (through SSH_ASKPASS), asks for
# each password, passphrase or code once (NumberOfPasswordPrompts=1: a wrong answer fails
# instead of being asked again), notices a dead network like the tunnel does, and ends with
# the app (ControlPersist=no: it is our supervised child, never a background daemon).
MASTER_OPTIONS = ("ControlMaster=yes", "ControlPersist=no", "NumberOfPasswordPrompts=1",
                  "ServerAliveInterval=15", "ServerAliveCountMax=3", "ConnectTimeout=10",
                  "ForwardX11=no", "LogLevel=INFO")
# Commands sent over a live master: never start a master, never prompt, stay quiet (the
# remote command's own stderr is what the caller reads).
CONTROL_OPTIONS = ("ControlMaster=no", "BatchMode=yes", "LogLevel=ERROR")
# The fallback without multiplexing (remote/single_session.py): one ssh carrying the
# forwards and one command; a forward that cannot bind ends it at once.
SINGLE_SESSION_OPTIONS = ("ControlMaster=no", "ControlPath=none", "ExitOnForwardFailure=yes",
                          "NumberOfPasswordPrompts=1", "ServerAliveInterval=15",
                          "ServerAliveCountMax=3", "ConnectTimeout=10", "ForwardX11=no",
                          "LogLevel=INFO")
CONTROL_OPERATIONS = ("check", "forward", "cancel", "exit")
# ssh binds the control socket under a name 17 characters longer than ControlPath, and a
# Unix socket path has 104 bytes on macOS/BSD (108 on Linux), terminator included.
MAX_CONTROL_PATH = 104 - 1 - 17
MAX_REMOTE_SOCKET = 108 - 1


def check_control_path(path: str) -> str:
    """A ControlPath ssh can use as given: ssh expands ``%`` tokens in it, splits option
    values at whitespace, and fails to bind a socket path longer than the OS limit."""
    if not path.startswith("/") or "%" in path or any(ch.isspace() or ord(ch) < 32
                                                       for ch in path):
        raise SpecError(f"Control socket path {path!r} must be absolute, without spaces "
                        "or '%'")
    if len(path.encode()) > MAX_CONTROL_PATH:
        raise SpecError(f"Control socket path {path!r} is longer than {MAX_CONTROL_PATH} "
                        "bytes; Unix sockets cannot be that long")
    return path


@dataclass(frozen=True)
class Forward:
    """``127.0.0.1:local_port`` here to ``host:port`` or a Unix socket on the far side
    (as the SSH server resolves them: ``127.0.0.1`` is the server itself, a compute node
    is reached by its name). Build with ``Forward.tcp`` or ``Forward.unix`` (validated)."""

    local_port: int
    host: str | None = None
    port: int | None = None
    socket_path: str | None = None

    @classmethod
    def tcp(cls, local_port: int, host: str, port: int) -> Forward:
        return cls(_check_port("Local port", local_port), check_node(host),
                   _check_port("Remote port", port))

    @classmethod
    def unix(cls, local_port: int, socket_path: str) -> Forward:
        return cls(_check_port("Local port", local_port), socket_path=check_socket(socket_path))

    @property
    def destination(self) -> str:
        """The far end, for messages: ``host:port`` or the socket path."""
        return self.socket_path or f"{self.host}:{self.port}"

    @property
    def spec(self) -> str:
        """The ``-L`` argument; always bound to 127.0.0.1 here."""
        return f"127.0.0.1:{self.local_port}:{self.destination}"


def remote_command(argv: Sequence[str]) -> str:
    """The remote shell command line for ``argv``: every word quoted with ``shlex.quote``,
    so paths and names the user typed reach the program as single, literal arguments.
    (The remote login shell parses it: sh, bash, zsh and csh all read single quotes.)"""
    words = list(argv)
    if not words or not all(isinstance(word, str) for word in words):
        raise SpecError("A remote command needs a program and string arguments")
    if any("\0" in word for word in words):
        raise SpecError("A remote command argument contains a NUL character")
    return shlex.join(words)


def master_argv(host: HostSpec, control_path: str, *, ssh: str = "ssh") -> list[str]:
    """``ssh -M -N`` opening the master connection for ``host`` at ``control_path``."""
    host = host.validated()
    return [ssh, "-M", "-N", *_options(MASTER_OPTIONS),
            "-o", f"ControlPath={check_control_path(control_path)}",
            *host.connection_args(), host.target]


def control_argv(host: HostSpec, control_path: str, operation: str,
                 forward: Forward | None = None, *, ssh: str = "ssh") -> list[str]:
    """``ssh -O check|forward|cancel|exit [-L ...]`` addressed to the live master."""
    if operation not in CONTROL_OPERATIONS:
        raise SpecError(f"Unknown control operation {operation!r}")
    host = host.validated()
    words = ["-O", operation] + (["-L", forward.spec] if forward is not None else [])
    return [ssh, *_options(CONTROL_OPTIONS),
            "-o", f"ControlPath={check_control_path(control_path)}",
            *host.connection_args(), *words, host.target]


def command_argv(host: HostSpec, control_path: str, argv: Sequence[str], *,
                 ssh: str = "ssh") -> list[str]:
    """ssh running ``argv`` on the host over the live master (no tty, no prompt)."""
    host = host.validated()
    return [ssh, "-T", *_options(CONTROL_OPTIONS),
            "-o", f"ControlPath={check_control_path(control_path)}",
            *host.connection_args(), host.target, remote_command(argv)]


def single_session_argv(host: HostSpec, forwards: Sequence[Forward], command_line: str, *,
                        ssh: str = "ssh") -> list[str]:
    """One ssh carrying ``forwards`` and running ``command_line`` (already built with
    ``remote_command``): the fallback where there is no ControlMaster."""
    host = host.validated()
    words = [word for forward in forwards for word in ("-L", forward.spec)]
    return [ssh, "-T", *_options(SINGLE_SESSION_OPTIONS), *words, *host.connection_args(),
            host.target, command_line]


def multiplexing_supported(version: str) -> bool:
    """From ``ssh -V``'s output: can this client share one connection (ControlMaster)?

    Windows' own OpenSSH (``OpenSSH_for_Windows_*``) cannot: it has no Unix-socket
    multiplexing. Elsewhere OpenSSH >= 6.7 can, with the ``-O cancel`` of local forwards
    and the Unix-socket forwards the master needs.
    """
    if "OpenSSH_for_Windows" in version:
        return False
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", version)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (6, 7)
