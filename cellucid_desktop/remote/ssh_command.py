"""The ssh command for a tunnel: validated fields in, an argv list (and its display) out.

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
from dataclasses import dataclass

DEFAULT_REMOTE_PORT = 8765

# Options the supervisor needs: fail fast when the forward cannot bind, notice a dead
# connection within ~45 s, never hang on a prompt nobody can answer, and log the
# "channel N: open failed" lines (INFO level) that errors.py reads.
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
    """A remote Unix socket path as ``ssh -L`` takes it: absolute, one word, no ':'."""
    text = path.strip()
    if not text.startswith("/") or ":" in text or \
            any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise SpecError(f"Remote socket {text!r} should be the absolute path `serve --socket` "
                        "printed (no spaces or ':')")
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

    def validated(self) -> TunnelSpec:
        """A copy with every field checked and normalised; raises SpecError."""
        jumps: list[str] = []
        for item in self.jump:
            jumps += [_check_word("Jump host", part) for part in item.split(",") if part.strip()]
        identity = self.identity_file.strip() if self.identity_file else None
        if identity is not None:
            if identity.startswith("-") or any(ord(ch) < 32 for ch in identity):
                raise SpecError(f"Identity file {identity!r} is not a usable file path")
        config = self.config_file
        if config is not None and (config.startswith("-") or any(ord(c) < 32 for c in config)):
            raise SpecError(f"SSH config file {config!r} is not a usable file path")
        if self.remote_socket and self.node and self.node.strip():
            raise SpecError("A socket on a compute node is reached by SSH to the node itself: "
                            "give the node as the SSH target and the login host as jump host")
        return TunnelSpec(
            target=_check_word("SSH target", self.target),
            remote_port=_check_port("Remote port", self.remote_port),
            local_port=None if self.local_port is None
            else _check_port("Local port", self.local_port),
            jump=tuple(jumps),
            node=check_node(self.node) if self.node and self.node.strip() else None,
            ssh_port=None if self.ssh_port is None else _check_port("SSH port", self.ssh_port),
            identity_file=identity or None,
            options=tuple(check_option(o) for o in self.options if o.strip()),
            config_file=config,
            remote_socket=check_socket(self.remote_socket) if self.remote_socket else None,
        )

    @property
    def forward_host(self) -> str:
        """Where the SSH server connects: itself, or the compute node."""
        return self.node or "127.0.0.1"

    @property
    def forward_to(self) -> str:
        """The far end of the forward, as ssh -L writes it: ``host:port`` or a socket."""
        return self.remote_socket or f"{self.forward_host}:{self.remote_port}"


def tunnel_argv(spec: TunnelSpec, local_port: int, *, supervised: bool = True,
                ssh: str = "ssh") -> list[str]:
    """The ssh argv for ``spec`` forwarding ``127.0.0.1:local_port``.

    ``supervised`` adds the options the supervisor relies on (no prompts, fail fast); the
    display for a terminal leaves them out so passwords and 2FA prompts work there.
    """
    spec = spec.validated()
    _check_port("Local port", local_port)
    argv = [ssh, "-N", "-L", f"127.0.0.1:{local_port}:{spec.forward_to}"]
    if supervised:
        for option in SUPERVISOR_OPTIONS:
            argv += ["-o", option]
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
    argv.append(spec.target)
    return argv


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
