"""The fallback where ssh cannot share a connection (Windows' OpenSSH has no ControlMaster).

Without a master every ssh process signs in on its own, so a 2FA user would be asked for
each command and each forward. ``SingleSession`` keeps that to once per connection by
putting everything one connection needs into one ssh process: the forwards (fixed when it
starts) and one remote command (typically the server, or a script that starts it), with
``ExitOnForwardFailure=yes`` so a busy local port fails at once.

Signed in = the remote command has started: it is run as ``echo MARKER; exec COMMAND``,
and ssh binds the local forwards before it opens the command's session, so the marker on
stdout means the forwards listen too. The command's later output lines reach
``on_output`` and ``output``. Closing ends ssh (the remote command's stdin then closes;
no terminal is allocated, so it gets no hangup signal: a command that must stop with the
connection should exit when its stdin ends).

``master.multiplexing_available()`` tells which of the two to use.
"""

from __future__ import annotations

import collections
import secrets
import subprocess
import threading
from collections.abc import Callable, Sequence

from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.ssh_command import (Forward, HostSpec, remote_command,
                                                 single_session_argv)
from cellucid_desktop.remote.ssh_process import SshProcess


class SingleSession(SshProcess):
    """One ssh carrying ``forwards`` and running ``command`` (an argv list)."""

    def __init__(self, host: HostSpec, broker: PromptBroker, *, forwards: Sequence[Forward],
                 command: Sequence[str], ssh: str = "ssh", reason: str = "",
                 on_output: Callable[[str], None] | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        super().__init__(host, broker, ssh=ssh, reason=reason, on_line=on_line)
        self.forwards = tuple(forwards)
        self.command = tuple(command)
        self.on_output = on_output
        self._marker = f"cellucid-signed-in-{secrets.token_hex(8)}"
        self._started = threading.Event()
        self._output: collections.deque[str] = collections.deque(maxlen=500)
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> list[str]:
        """The command's last stdout lines (after the start marker)."""
        return list(self._output)

    def wait_output(self, timeout: float) -> None:
        """Wait (``timeout`` s at most) until the command's stdout has been read to its
        end, so ``output`` and ``on_output`` have had its last lines (e.g. a log the
        command printed as it ended)."""
        if self._reader is not None:
            self._reader.join(timeout)

    def send(self, data: bytes) -> None:
        """Write ``data`` to the remote command's standard input (kept open: closing the
        session ends it). Raises ``OSError`` if the session is gone."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise BrokenPipeError("the session has ended")
        proc.stdin.write(data)
        proc.stdin.flush()

    def _argv(self) -> list[str]:
        line = f"echo {self._marker}; exec {remote_command(self.command)}"
        return single_session_argv(self.host, self.forwards, line, ssh=self.ssh)

    def _popen_options(self) -> dict:
        return {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}

    def _await_sign_in(self, proc: subprocess.Popen) -> bool:
        self._reader = threading.Thread(target=self._read_stdout, args=(proc,), daemon=True)
        self._reader.start()
        while not self._closing.is_set() and proc.poll() is None:
            if self._started.wait(0.1):
                return True
        return self._started.is_set()

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="surrogateescape").rstrip("\r\n")
            if not self._started.is_set():
                if line == self._marker:
                    self._started.set()
                continue
            self._output.append(line)
            if self.on_output is not None:
                self.on_output(line)

    def _before_close(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()  # the remote command sees its stdin end
            except OSError:
                pass
