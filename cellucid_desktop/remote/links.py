"""What carries a tunnel's forward: the host's signed-in master, or (where ssh cannot
multiplex) one ssh of its own that signs in once.

A ``Link`` is one attempt of a tunnel: ``open()`` signs in if needed (prompts go
through the pool's broker) and binds the forward; ``alive`` tells whether it still
carries it; ``release()`` gives the forward back (the master stays for the rest of the
app) or, for a link that froze, drops the connection so the next attempt makes a new
one (asking the user again only if the host wants a password, with the reason).
"""

from __future__ import annotations

from cellucid_desktop.remote.errors import SshProblem
from cellucid_desktop.remote.master import Master, MasterPool
from cellucid_desktop.remote.single_session import SingleSession
from cellucid_desktop.remote.ssh_command import Forward, HostSpec
from cellucid_desktop.remote.ssh_process import SshError, SshProcess

# What a SingleSession runs while it carries the forward: nothing but waiting for its
# stdin to end (it ends with the session).
HOLD_COMMAND = ("cat",)


class Link:
    """One forward over one connection (see the module docstring)."""

    def __init__(self, pool: MasterPool, host: HostSpec, forward: Forward) -> None:
        self.pool = pool
        self.host = host
        self.forward = forward
        self.connection: SshProcess | None = None

    def open(self, reason: str = "") -> Link:
        """Sign in (or reuse the master) and bind the forward; raises ``SshError``.
        ``reason`` is said with the prompts of a new single session."""
        if self.pool.multiplexing:
            master = self.pool.get(self.host)
            self.connection = master
            master.forward(self.forward)
        else:
            self.connection = SingleSession(
                self.host, self.pool.broker, forwards=[self.forward], command=HOLD_COMMAND,
                ssh=self.pool.ssh, reason=reason)
            self.connection.start()
        return self

    @property
    def alive(self) -> bool:
        return self.connection is not None and self.connection.alive

    @property
    def pid(self) -> int | None:
        return self.connection.pid if self.connection is not None else None

    @property
    def argv(self) -> list[str]:
        """The ssh command carrying the forward (the master's, or the session's)."""
        return self.connection._argv() if self.connection is not None else []

    @property
    def problem(self) -> SshProblem | None:
        """Why the connection ended, once it has."""
        return self.connection.problem if self.connection is not None else None

    def line_mark(self) -> int:
        return self.connection.line_mark() if self.connection is not None else 0

    def lines_since(self, mark: int, containing: str = "", *,
                    wait: float = 0.0) -> list[str]:
        if self.connection is None:
            return []
        return self.connection.lines_since(mark, containing, wait=wait)

    def release(self, frozen: SshProblem | None = None) -> None:
        """Give the forward back. ``frozen``: the link stopped answering, so its
        connection is ended at once (a shared master too: it is frozen for everyone)."""
        connection = self.connection
        if connection is None:
            return
        if isinstance(connection, Master):
            if frozen is not None:
                self.pool.discard(connection, frozen)
            elif connection.alive:
                try:
                    connection.cancel(self.forward)
                except SshError:
                    pass  # the master went away meanwhile: the forward went with it
        else:
            connection.close(graceful=frozen is None)
