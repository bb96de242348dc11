"""ssh's stderr and exit code turned into one sentence a user can act on.

``diagnose`` reads a tunnel's ssh (BatchMode: no prompts); ``diagnose_login`` reads an
ssh that signed in through our prompts (``master.py``), where what the user answered says
more than ssh's stderr: which host asked, and whether the password, the passphrase or
the one-time code was the one refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cellucid_desktop.remote.prompts import Outcome, PromptKind, PromptRecord, Role


@dataclass(frozen=True)
class SshProblem:
    """``kind`` is stable (for code and tests); ``message`` is for the user;
    ``retry`` says whether reconnecting could help."""

    kind: str
    message: str
    retry: bool


# (kind, pattern, message, retry). First match wins, so specific patterns come first.
_RULES: tuple[tuple[str, str, str, bool], ...] = (
    ("host-key-changed", r"REMOTE HOST IDENTIFICATION HAS CHANGED",
     "The host key of {host} has changed since you last connected; if the server was not "
     "reinstalled this may be an attack, otherwise remove the old key with "
     "`{remove_key}` and connect once in a terminal.", False),
    ("host-key-unknown", r"Host key verification failed|No \S+ host key is known|"
     r"authenticity of host",
     "{host} is not in your known hosts yet; connect once in a terminal to check and "
     "accept its key: {command}", False),
    ("local-port-busy", r"bind \[?[0-9.:]+\]?:(\d+): Address already in use|"
     r"cannot listen to port|Could not request local forwarding",
     "The local port {local_port} is already in use{holder}; choose another local port.",
     False),
    ("auth-failed", r"Permission denied|Too many authentication failures|"
     r"Authentication failed|no more authentication methods",
     "Authentication to {host} failed (the app cannot type passwords or 2FA codes); run "
     "this in a terminal to log in, or add your key to ssh-agent: {command}", False),
    ("identity-file", r"Identity file .* not accessible|Load key .*: (?:invalid format|"
     r"bad permissions|error in libcrypto)|UNPROTECTED PRIVATE KEY FILE",
     "The identity file could not be used (missing, unreadable or with too-open "
     "permissions); check the path and run `chmod 600` on it.", False),
    ("node-not-found", r"open failed: (?:connect failed: )?(?:Name or service not known|"
     r"Temporary failure in name resolution)",
     "The login node could not resolve the compute node {node}; check its name.", False),
    ("name-not-found", r"Could not resolve hostname|Name or service not known|"
     r"nodename nor servname",
     "The host name {host} could not be found; check the spelling or your ~/.ssh/config "
     "alias.", False),
    ("ssh-refused", r"connect to host .* port \d+: Connection refused",
     "{host} refused the SSH connection; check the SSH port and that sshd runs there.", True),
    ("timeout", r"Connection timed out|Operation timed out|timed out during banner",
     "The connection to {host} timed out; check the network, VPN or jump host.", True),
    ("unreachable", r"No route to host|Network is unreachable",
     "{host} is unreachable from this machine; check the network or VPN.", True),
    ("forwarding-refused", r"open failed: administratively prohibited",
     "The SSH server does not allow port forwarding (AllowTcpForwarding); ask the "
     "administrators or use the cluster's own tunnel tool.", False),
    # (sshd says "open failed" again for a Unix socket nobody listens on)
    ("nothing-listening", r"open failed: connect failed: (?:Connection refused|"
     r"No such file or directory|open failed)",
     "Nothing is listening on {listener} of {where}; start the server there "
     "first: {server_command}", False),
    ("bad-option", r"Bad configuration option|command-line line \d+|"
     r"Unsupported option|unknown option",
     "ssh rejected an option: {detail}", False),
    ("connection-lost", r"Connection closed by|Connection reset|Broken pipe|"
     r"Connection to \S+ closed by remote host|"
     r"Timeout, server .* not responding|kex_exchange_identification",
     "The SSH connection to {host} was lost.", True),
)


def diagnose(stderr: str, returncode: int | None, *, host: str, command: str = "",
             local_port: int | None = None, remote_port: int | str | None = None,
             node: str | None = None, holder: str | None = None,
             server_command: str = "cellucid serve data.h5ad --no-browser") -> SshProblem:
    """Name the problem in ssh's output; unknown output becomes its last line verbatim."""
    remove = re.search(r"^\s*(ssh-keygen -f .* -R .*)$", stderr, re.M)
    values = {"host": host, "command": command, "local_port": local_port,
              "remote_port": remote_port, "node": node or host, "where": node or host,
              "listener": f"socket {remote_port}" if isinstance(remote_port, str)
              else f"port {remote_port}",
              "holder": f" by {holder}" if holder else "", "server_command": server_command,
              "remove_key": remove.group(1).strip() if remove else f"ssh-keygen -R {host}"}
    for kind, pattern, message, retry in _RULES:
        match = re.search(pattern, stderr)
        if match:
            values["detail"] = _last_line(stderr[match.start():])
            return SshProblem(kind, message.format(**values), retry)
    last = _last_line(stderr)
    if returncode == 255 or last:
        return SshProblem("ssh-failed", f"ssh stopped (exit {returncode}): "
                          f"{last or 'no message'}", True)
    return SshProblem("ssh-exited", f"ssh stopped unexpectedly (exit {returncode}).", True)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


_DENIED = re.compile(r"^(\S+)@(\S+): Permission denied \(([^)]*)\)", re.M)
_NO_HOST_KEY = re.compile(r"No \S+ host key is known for (\S+) ")


def diagnose_login(stderr: str, returncode: int | None, *, host: str,
                   records: Sequence[PromptRecord] = (),
                   names: Mapping[str, str] | None = None) -> SshProblem:
    """Why signing in failed, from ssh's output and what became of each prompt.

    ``names`` maps how ssh names a host (``user@hostname``, the known-hosts form
    ``[hostname]:port``) to how the user knows it ("the jump host gw"), so a failure on
    a jump host names the jump host. None of these problems is retried automatically.
    """
    names = dict(names or {})

    def who(*keys: str | None) -> str:
        return next((names[k] for k in keys if k and k in names), None) or \
            next((k for k in keys if k), host)

    for record in records:
        prompt = record.prompt
        speaker = who(f"{prompt.user}@{prompt.host}" if prompt.user else None, prompt.host)
        if record.outcome is Outcome.CANCELLED:
            return SshProblem("sign-in-cancelled", f"Sign-in to {speaker} was cancelled.",
                              False)
        if record.outcome is Outcome.DECLINED and prompt.kind is PromptKind.HOST_KEY:
            return SshProblem("host-key-rejected", f"You did not accept the host key of "
                              f"{speaker} ({prompt.key_type} {prompt.fingerprint}); nothing "
                              "was added to your known hosts.", False)
        if record.outcome is Outcome.REFUSED:
            return _rejected(record.prompt.role, speaker, prompt.key_file)
    if "Too many authentication failures" in stderr:
        return SshProblem("too-many-failures", f"{host} closed the connection after too many "
                          "failed sign-in attempts; wait a while before connecting again (many "
                          "keys in ssh-agent count as attempts too: set IdentitiesOnly=yes).",
                          False)
    denied = _DENIED.search(stderr)
    if denied:
        user, hostname, methods = denied.groups()
        speaker = who(f"{user}@{hostname}", hostname)
        answered = [r.prompt for r in records if r.outcome is Outcome.ANSWERED
                    and r.prompt.kind in (PromptKind.SECRET, PromptKind.TEXT)
                    and (r.prompt.user, r.prompt.host) in ((user, hostname), (None, None))]
        if answered:
            return _rejected(answered[-1].role, speaker, answered[-1].key_file)
        return SshProblem("auth-refused", f"{speaker} accepted none of the ways ssh could "
                          f"sign in ({methods}); check the user name, or add your key to "
                          "ssh-agent.", False)
    unknown = _NO_HOST_KEY.search(stderr)
    if unknown:
        return SshProblem("host-key-unknown", f"{who(unknown.group(1))} is not in your known "
                          "hosts, and your SSH settings refuse unknown hosts "
                          "(StrictHostKeyChecking); add its key to known_hosts first.", False)
    problem = diagnose(stderr, returncode, host=host)
    if any(r.outcome is Outcome.ANSWERED and r.prompt.kind in (PromptKind.SECRET,
                                                               PromptKind.TEXT)
           for r in records):
        # The user answered, and it still failed (the server closed on us mid-way):
        # trying again would reach the server as another attempt. The user decides.
        return SshProblem(problem.kind, problem.message, False)
    return problem


def _rejected(role: Role, speaker: str, key_file: str | None) -> SshProblem:
    if role is Role.PASSPHRASE:
        return SshProblem("passphrase-rejected", f"The passphrase for {key_file or 'the key'} "
                          "was not accepted; connect again to retry.", False)
    if role is Role.CODE:
        return SshProblem("code-rejected", f"{speaker} did not accept the one-time code (or "
                          "the password before it); connect again with a fresh code.", False)
    if role is Role.PASSWORD:
        return SshProblem("password-rejected", f"{speaker} did not accept the password; the "
                          "app asks only once, so connect again to retry.", False)
    return SshProblem("answer-rejected", f"{speaker} did not accept your answer; connect "
                      "again to retry.", False)
