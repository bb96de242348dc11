"""Which host is which: the jump hosts and the target as ssh will name them.

ssh names hosts by their resolved ``HostName`` (``user@10.0.0.5: Permission denied``,
``(user@10.0.0.5) Password:``, ``No ED25519 host key is known for [10.0.0.5]:2222``),
while the user typed an alias or a jump host. ``ssh -G`` (local, no network) resolves each
hop through the same config files, so a message can say "the jump host gw" instead of
naming the wrong host or an address the user never typed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from cellucid_desktop.remote.ssh_command import HostSpec

_JUMP = re.compile(r"^(?:ssh://)?(?:([^@\s]+)@)?(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$")


@dataclass(frozen=True)
class Hop:
    label: str      # how the user knows it: "the jump host gw", or the target as typed
    user: str
    hostname: str
    port: int

    @property
    def names(self) -> tuple[str, ...]:
        """How ssh's messages and prompts name this hop."""
        known = self.hostname if self.port == 22 else f"[{self.hostname}]:{self.port}"
        return (f"{self.user}@{self.hostname}", known)


def parse_config(text: str) -> dict[str, str]:
    """``ssh -G`` output: one ``key value`` per line; the first value of a key wins."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            values.setdefault(key.lower(), value.strip())
    return values


def query_argv(host: HostSpec, jump: str | None = None, *, ssh: str = "ssh") -> list[str]:
    """``ssh -G`` for the target, or for one ``-J`` entry as ssh's own jump command sees
    it (the jump ssh gets ``-F``, user and port, none of our ``-o`` options)."""
    host = host.validated()
    if jump is None:
        return [ssh, "-G", *host.connection_args(), host.target]
    match = _JUMP.match(jump)
    if not match:
        raise ValueError(f"unreadable jump host {jump!r}")
    user, name, port = match.groups()
    argv = [ssh, "-G"] + (["-F", host.config_file] if host.config_file else [])
    argv += (["-l", user] if user else []) + (["-p", port] if port else [])
    return [*argv, name.strip("[]")]


def resolve_hops(host: HostSpec, *, ssh: str = "ssh") -> list[Hop]:
    """The jump hosts (in order) and then the target; hops ssh cannot resolve are left
    out (messages then use ssh's own names)."""
    host = host.validated()
    wanted = [(f"the jump host {j}", j) for j in host.jump] + [(host.target, None)]
    hops = []
    for label, jump in wanted:
        try:
            argv = query_argv(host, jump, ssh=ssh)
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                  stdin=subprocess.DEVNULL)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            continue
        values = parse_config(done.stdout)
        if done.returncode == 0 and values.get("port", "").isdigit():
            hops.append(Hop(label, values.get("user", ""), values.get("hostname", ""),
                            int(values["port"])))
    return hops


def hop_names(hops: list[Hop]) -> dict[str, str]:
    """ssh's names → labels, leaving out names two hops share (they would mislead)."""
    seen: dict[str, list[str]] = {}
    for hop in hops:
        for name in hop.names:
            seen.setdefault(name, []).append(hop.label)
    return {name: labels[0] for name, labels in seen.items() if len(set(labels)) == 1}
