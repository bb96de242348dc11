"""The app side of SSH_ASKPASS: every prompt of every ssh we run reaches the user here.

``PromptBroker`` listens on a Unix socket in this launch's private folder (loopback TCP
where AF_UNIX is missing, e.g. some Windows Pythons), accepts only helpers that present
the per-launch secret, and hands each prompt to a *front end*: a callable taking a
``PromptRequest`` and returning the answer, or None to cancel. The GUI's front end shows a
window; the CLI's (``cli/terminal_prompts.py``) asks on the terminal. One question is
asked at a time.

Each ssh process gets an ``AskpassSession`` (its environment names it), which enforces
that authentication is never retried without the user deciding it:

* a secret asked again after it was answered (``prompts.is_retry``: ssh retrying a wrong
  password or passphrase, or moving on to the next method that wants the same password)
  is refused without asking;
* after the user cancels a prompt or declines a host key, later prompts are refused too;
* when a prompt is refused or cancelled, the session's ``on_abandon`` runs *before* ssh
  gets its answer: the owner stops ssh there, because any answer, even an empty one, would
  reach the server as one more failed attempt (and a jump host's ssh, which does not get
  our ``NumberOfPasswordPrompts=1``, would try up to three times);
* once the owner closes the session (signed in, or ssh ended), nothing more is asked.

Answers are passed through and forgotten: nothing stores or replays them.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import shlex
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cellucid_desktop.remote import askpass
from cellucid_desktop.remote.private_dir import private_dir
from cellucid_desktop.remote.prompts import (Outcome, Prompt, PromptKind, PromptRecord,
                                            classify, is_retry)

log = logging.getLogger(__name__)

READ_TIMEOUT = 10.0  # a helper sends its prompt at once; anything slower is not ours


@dataclass(eq=False)  # compared and hashed by identity
class PromptRequest:
    """What a front end gets: the prompt, which connection asks (``connection``, as the
    user named it), why it asks again if it does (``reason``, "" the first time), and
    ``cancelled``, set when the answer is no longer wanted (ssh ended, the user pressed
    Disconnect elsewhere): a window should then close itself."""

    prompt: Prompt
    connection: str
    reason: str = ""
    cancelled: threading.Event = field(default_factory=threading.Event)


FrontEnd = Callable[[PromptRequest], "str | None"]


def askpass_program() -> str:
    """The program SSH_ASKPASS names (a path; ssh passes no arguments but the prompt):
    the frozen executable, else the ``cellucid-desktop`` console script installed next to
    this interpreter, else a private wrapper running ``python -m ...askpass``."""
    if getattr(sys, "frozen", False):
        return sys.executable
    script = Path(sys.executable).with_name(
        "cellucid-desktop.exe" if sys.platform == "win32" else "cellucid-desktop")
    if script.is_file():
        return str(script)
    return str(module_wrapper())


def module_wrapper() -> Path:
    """A 0700 script in the private folder: ``python -m cellucid_desktop.remote.askpass``
    with this checkout on PYTHONPATH (a source checkout run without installing)."""
    if sys.platform == "win32":
        raise RuntimeError("Install Cellucid Desktop (pip install -e .) so ssh can run its "
                           "cellucid-desktop.exe to ask for passwords")
    root = Path(__file__).resolve().parents[2]
    path = private_dir() / "askpass"
    path.write_text("#!/bin/sh\n"
                    f"PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}} "
                    f"exec {shlex.quote(sys.executable)} -m cellucid_desktop.remote.askpass "
                    '"$@"\n')
    path.chmod(0o700)
    return path


class AskpassSession:
    """The prompts of one ssh process (and the jump-host ssh it starts)."""

    def __init__(self, broker: PromptBroker, label: str, reason: str,
                 on_abandon: Callable[[], None] | None) -> None:
        self.broker = broker
        self.id = secrets.token_hex(8)
        self.label = label
        self.reason = reason
        self.on_abandon = on_abandon
        self._records: list[PromptRecord] = []
        self._pending: set[PromptRequest] = set()
        self._closed = False
        self._lock = threading.Lock()

    @property
    def records(self) -> list[PromptRecord]:
        """Every prompt ssh sent so far, with what became of it (for error messages)."""
        with self._lock:
            return list(self._records)

    def env(self) -> dict[str, str]:
        """The environment to run this session's ssh with."""
        env = dict(os.environ)
        env.update({
            "SSH_ASKPASS": self.broker.program, "SSH_ASKPASS_REQUIRE": "force",
            askpass.ACTIVATE_ENV: "1", askpass.ADDRESS_ENV: self.broker.address,
            askpass.SECRET_ENV: self.broker.secret, askpass.SESSION_ENV: self.id})
        # ssh < 8.4 ignores SSH_ASKPASS_REQUIRE and uses the helper only with a DISPLAY
        # (and no terminal, which start_new_session ensures).
        env.setdefault("DISPLAY", ":0")
        return env

    def close(self) -> None:
        """Ask nothing more; dismiss the questions still open."""
        with self._lock:
            self._closed = True
            pending = list(self._pending)
        for request in pending:
            request.cancelled.set()
        self.broker._forget(self)

    def _admit(self, prompt: Prompt) -> PromptRequest | Outcome:
        """A request to put to the user, or why this prompt is not asked."""
        with self._lock:
            if self._closed:
                outcome = Outcome.CLOSED
            elif any(r.outcome in (Outcome.CANCELLED, Outcome.DECLINED, Outcome.REFUSED)
                     for r in self._records):
                outcome = Outcome.REFUSED
            elif is_retry(prompt, [r.prompt for r in self._records
                                   if r.outcome is Outcome.ANSWERED]):
                outcome = Outcome.REFUSED
            else:
                request = PromptRequest(prompt, self.label, self.reason)
                self._pending.add(request)
                return request
            self._records.append(PromptRecord(prompt, outcome))
            return outcome

    def _finish(self, request: PromptRequest, outcome: Outcome) -> None:
        with self._lock:
            self._pending.discard(request)
            self._records.append(PromptRecord(request.prompt, outcome))

    def _abandon(self) -> None:
        """The sign-in cannot succeed any more: let the owner stop ssh now."""
        if self.on_abandon is not None:
            try:
                self.on_abandon()
            except Exception:  # noqa: BLE001 - the answer must still be sent
                log.exception("askpass: stopping ssh failed")


class PromptBroker:
    """Receives the helpers' prompts and asks the front end (see the module docstring).

    ``transport`` is "unix", "tcp" or "auto" (Unix socket where available). Use as a
    context manager, or ``start()`` / ``close()``."""

    def __init__(self, front_end: FrontEnd, *, transport: str = "auto",
                 program: str | None = None) -> None:
        if transport == "auto":
            transport = "unix" if hasattr(socket, "AF_UNIX") else "tcp"
        if transport not in ("unix", "tcp"):
            raise ValueError(f"unknown transport {transport!r}")
        self.front_end = front_end
        self.transport = transport
        self.program = program or askpass_program()
        self.secret = secrets.token_urlsafe(32)
        self.address = ""
        self._sessions: dict[str, AskpassSession] = {}
        self._lock = threading.Lock()
        self._ask_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PromptBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> PromptBroker:
        if self.transport == "unix":
            path = private_dir() / f"askpass-{secrets.token_hex(4)}.sock"
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(str(path))
            os.chmod(path, 0o600)
            self.address = f"unix:{path}"
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            self.address = f"tcp:127.0.0.1:{listener.getsockname()[1]}"
        listener.listen(16)
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True,
                                        name="askpass-broker")
        self._thread.start()
        return self

    def session(self, label: str, reason: str = "",
                on_abandon: Callable[[], None] | None = None) -> AskpassSession:
        """A new session for one ssh process; ``label`` names the connection to the user,
        ``on_abandon`` stops that ssh (see the module docstring)."""
        session = AskpassSession(self, label, reason, on_abandon)
        with self._lock:
            self._sessions[session.id] = session
        return session

    def close(self) -> None:
        """Stop listening and refuse everything still open. The accept thread closes the
        listening socket itself, once woken: closed from here while that thread may be
        about to call accept() again, its file descriptor number could be reused by the
        next broker's socket, and the old thread would take the new broker's prompts."""
        with self._lock:
            sessions = list(self._sessions.values())
            thread, self._thread = self._thread, None
        for session in sessions:
            session.close()
        if thread is None:
            return
        self._stopping.set()
        try:
            askpass.connect(self.address).close()  # wakes the accept thread
        except OSError:
            pass
        thread.join(10)
        if self.transport == "unix":
            Path(self.address.removeprefix("unix:")).unlink(missing_ok=True)

    def _forget(self, session: AskpassSession) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    log.exception("askpass: the broker stopped listening")
                    return
                if self._stopping.is_set():
                    conn.close()
                    return
                threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name="askpass-prompt").start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(READ_TIMEOUT)
                message = askpass.read_message(conn)
                conn.settimeout(None)
                answer = self._answer(message)
                conn.sendall(askpass.encode({"answer": answer} if answer is not None
                                            else {"cancel": True}))
            except (OSError, ValueError) as exc:
                log.warning("askpass: dropped a helper connection: %s", exc)

    def _answer(self, message: dict) -> str | None:
        secret = message.get("secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret, self.secret):
            log.warning("askpass: refused a helper without the launch secret")
            return None
        with self._lock:
            session = self._sessions.get(str(message.get("session")))
        text, hint = message.get("prompt"), message.get("hint")
        prompt = classify(text if isinstance(text, str) else "",
                          hint if isinstance(hint, str) else "")
        if session is None:
            log.warning("askpass: a prompt for no open connection was refused")
            return None
        admitted = session._admit(prompt)
        if isinstance(admitted, Outcome):
            log.info("askpass: %s: not asked (%s): %r", session.label, admitted.value,
                     prompt.text)
            session._abandon()
            return None
        if prompt.kind is PromptKind.NOTICE:  # nothing to answer; ssh ends the helper
            self._ask(admitted)
            session._finish(admitted, Outcome.ANSWERED)
            return ""
        with self._ask_lock:  # one question on screen at a time
            answer = None if admitted.cancelled.is_set() else self._ask(admitted)
        return self._settle(session, admitted, answer)

    def _ask(self, request: PromptRequest) -> str | None:
        try:
            return self.front_end(request)
        except Exception:  # noqa: BLE001 - a broken front end cancels, never hangs ssh
            log.exception("askpass front end failed")
            return None

    @staticmethod
    def _settle(session: AskpassSession, request: PromptRequest,
                answer: str | None) -> str | None:
        """Record the outcome; normalise yes/no answers; refuse what ssh cannot read."""
        if answer is not None and any(ch in answer for ch in "\r\n\0"):
            answer = None  # ssh reads one line: a multi-line answer would be cut silently
        if request.cancelled.is_set():
            answer = None
        prompt = request.prompt
        if prompt.kind in (PromptKind.HOST_KEY, PromptKind.CONFIRM):
            accepted = answer is not None and answer.strip().lower() in ("yes", "y") or (
                answer is not None and prompt.fingerprint is not None
                and answer.strip() == prompt.fingerprint)
            session._finish(request, Outcome.ANSWERED if accepted else Outcome.DECLINED)
            return "yes" if accepted else "no"
        session._finish(request, Outcome.CANCELLED if answer is None else Outcome.ANSWERED)
        if answer is None:
            session._abandon()
        return answer
