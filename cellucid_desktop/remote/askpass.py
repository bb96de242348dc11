"""The SSH_ASKPASS helper: ssh runs it once per prompt; it relays the prompt to the app.

ssh (with ``SSH_ASKPASS_REQUIRE=force``) runs ``$SSH_ASKPASS "prompt text"`` and reads the
answer from the helper's stdout; exit status 1 means "cancelled" (ssh then sends an empty
answer, which fails). This helper connects to the app's ``PromptBroker``
(``prompt_broker.py``) at the address in ``CELLUCID_ASKPASS_ADDRESS`` (a Unix socket in a
0700 folder, or loopback TCP where there is no AF_UNIX), proves itself with the per-launch
secret, and waits for the user's answer.

It must start fast and work frozen: ``SSH_ASKPASS`` is a program path without arguments,
so it is the ``cellucid-desktop`` executable (or console script) itself with
``CELLUCID_DESKTOP_ASKPASS=1``, which ``cli.main`` checks before importing anything else;
in a source checkout ``python -m cellucid_desktop.remote.askpass PROMPT`` does the same.
This module therefore imports only the standard library.

This file also holds every name the two sides share: the environment variables and the
wire format (one JSON line each way).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Sequence

ACTIVATE_ENV = "CELLUCID_DESKTOP_ASKPASS"   # "1": the executable acts as this helper
ADDRESS_ENV = "CELLUCID_ASKPASS_ADDRESS"    # "unix:/path" or "tcp:127.0.0.1:PORT"
SECRET_ENV = "CELLUCID_ASKPASS_SECRET"      # per-launch secret proving the helper is ours
SESSION_ENV = "CELLUCID_ASKPASS_SESSION"    # which connection (master) is asking
HINT_ENV = "SSH_ASKPASS_PROMPT"             # set by ssh: "confirm", "none" or unset
MAX_MESSAGE = 256 * 1024
EXIT_CANCELLED = 1
EXIT_NOT_STARTED = 2


def encode(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def read_message(sock: socket.socket) -> dict:
    """One JSON line from ``sock``; ValueError if it is too long, cut off or not an object."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ValueError("connection closed before a full message")
        data += chunk
        if len(data) > MAX_MESSAGE:
            raise ValueError("message too long")
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("message is not an object")
    return message


def connect(address: str) -> socket.socket:
    """A connected socket to ``unix:PATH`` or ``tcp:HOST:PORT``."""
    scheme, _, rest = address.partition(":")
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(rest)
        return sock
    if scheme == "tcp":
        host, _, port = rest.rpartition(":")
        return socket.create_connection((host, int(port)))
    raise ValueError(f"unknown askpass address {address!r}")


def main(argv: Sequence[str]) -> int:
    """Relay ``argv[0]`` (the prompt) to the app; print the answer. Exit 1 = cancelled."""
    address = os.environ.get(ADDRESS_ENV)
    if not address:
        print("cellucid-desktop askpass: not started by Cellucid Desktop (no "
              f"{ADDRESS_ENV}); nothing to ask", file=sys.stderr)
        return EXIT_NOT_STARTED
    request = {"secret": os.environ.get(SECRET_ENV, ""),
               "session": os.environ.get(SESSION_ENV, ""),
               "prompt": argv[0] if argv else "", "hint": os.environ.get(HINT_ENV, "")}
    try:
        with connect(address) as sock:
            sock.sendall(encode(request))
            reply = read_message(sock)
    except (OSError, ValueError) as exc:
        print(f"cellucid-desktop askpass: the app did not answer ({exc}); sign-in cancelled",
              file=sys.stderr)
        return EXIT_CANCELLED
    answer = reply.get("answer")
    if not isinstance(answer, str):
        print("cellucid-desktop askpass: sign-in cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    sys.stdout.write(answer + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
