"""The app's front end for ssh's questions: a small window (``pages/prompt.html``).

``PromptWindow`` is the callable ``PromptBroker(front_end)`` wants (docs/remote.md,
"Prompts relayed to the user"). The broker calls it on its own thread, one question at a
time, so waiting here for the user never blocks the GUI thread: the window is shown (and
its page told to re-read the question), then this thread waits until the page answers,
the user cancels (Cancel, Escape, or closing the window), or the question is withdrawn
(``request.cancelled``: ssh ended, or the connection was closed elsewhere), which hides
the window again. The same window serves the next question (a password, then a
one-time code), so it does not flicker through a new window each time.

The page shows ssh's own words (``Prompt.text``) and, by kind: a masked field for
secrets, a visible one for text (with one button per choice of a Duo-style menu),
Accept / Reject with the host and the key's fingerprint for an unknown host key, Yes /
No for other confirmations, OK for a notice. ``reason`` says why it asks again ("The
SSH connection to HOST was lost. Sign in again to continue.").
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.ipc import Page
from cellucid_desktop.remote.prompts import PromptKind

if TYPE_CHECKING:
    from cellucid_desktop.desktop.windows import Windows
    from cellucid_desktop.remote.prompt_broker import PromptRequest

log = logging.getLogger(__name__)

WAIT_SLICE = 0.1  # seconds between looks at request.cancelled while the user thinks
HISTORY = 50  # questions remembered for the test surface


@dataclass(eq=False)
class _Question:
    id: int
    request: PromptRequest
    answered: threading.Event = field(default_factory=threading.Event)
    answer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        prompt = self.request.prompt
        return {"id": self.id, "kind": prompt.kind.value, "role": prompt.role.value,
                "text": prompt.text, "connection": self.request.connection,
                "reason": self.request.reason, "user": prompt.user, "host": prompt.host,
                "address": prompt.address, "key_type": prompt.key_type,
                "fingerprint": prompt.fingerprint, "key_file": prompt.key_file,
                "choices": list(prompt.choices)}


def window_title(request: PromptRequest) -> str:
    if request.prompt.kind is PromptKind.HOST_KEY:
        return f"Unknown host key for {request.connection} — Cellucid Desktop"
    return f"Sign in to {request.connection} — Cellucid Desktop"


class PromptWindow:
    """``PromptBroker(PromptWindow(windows))``: see the module docstring."""

    def __init__(self, windows: Windows) -> None:
        self._windows = windows
        self._ids = itertools.count(1)
        self._current: _Question | None = None
        self._lock = threading.Lock()
        self._asked: list[dict[str, Any]] = []
        windows.on_close(self._window_closed)

    # ----- the broker's side ------------------------------------------------------------

    def __call__(self, request: PromptRequest) -> str | None:
        question = _Question(next(self._ids), request)
        notice = request.prompt.kind is PromptKind.NOTICE
        with self._lock:
            if notice and self._current is not None and not self._is_notice(self._current):
                log.info("ssh notice while a question is open: %s", request.prompt.text)
                return ""
            self._current = question
            self._asked.append({**question.as_dict(), "outcome": "asked"})
            del self._asked[:-HISTORY]
        self._show(request)
        if notice:  # nothing to answer: ssh goes on (and ends the helper) by itself
            return ""
        while not question.answered.wait(WAIT_SLICE):
            if request.cancelled.is_set():
                question.answer = None
                break
        self._finish(question, "withdrawn" if request.cancelled.is_set() and
                     not question.answered.is_set() else
                     "answered" if question.answer is not None else "cancelled")
        return question.answer

    @staticmethod
    def _is_notice(question: _Question) -> bool:
        return question.request.prompt.kind is PromptKind.NOTICE

    def _show(self, request: PromptRequest) -> None:
        if Page.PROMPT in self._windows:
            self._windows.refresh(Page.PROMPT)
            self._windows.focus(Page.PROMPT)
        else:
            self._windows.create_page(Page.PROMPT)
        window = self._windows.get(Page.PROMPT)
        if window is not None:
            window.set_title(window_title(request))

    def _finish(self, question: _Question, outcome: str) -> None:
        with self._lock:
            for entry in self._asked:
                if entry["id"] == question.id:
                    entry["outcome"] = outcome
            if self._current is not question:
                return
            self._current = None
        self._windows.hide(Page.PROMPT)
        self._windows.refresh(Page.PROMPT)

    def _window_closed(self, key: str) -> None:
        """Closing the window cancels the question it showed."""
        if key == Page.PROMPT:
            with self._lock:
                question = self._current
            if question is not None:
                self._settle(question.id, None)

    # ----- the page's side (PromptApi) --------------------------------------------------

    def current(self) -> dict[str, Any]:
        with self._lock:
            question = self._current
        return question.as_dict() if question is not None else {"id": None}

    def _settle(self, question_id: int, answer: str | None) -> bool:
        with self._lock:
            question = self._current
            if question is None or question.id != question_id:
                return False  # answered elsewhere, withdrawn, or an old page
            if self._is_notice(question):
                self._current = None
        if self._is_notice(question):
            self._windows.hide(Page.PROMPT)
            return True
        question.answer = answer
        question.answered.set()
        return True

    def answer(self, question_id: int, answer: str) -> bool:
        return self._settle(question_id, str(answer))

    def cancel(self, question_id: int) -> bool:
        return self._settle(question_id, None)

    def asked(self) -> list[dict[str, Any]]:
        """The questions shown so far and what became of each (test surface)."""
        with self._lock:
            return [dict(entry) for entry in self._asked]


class PromptApi:
    """``window.pywebview.api.prompt_*`` for pages/prompt.html."""

    _prompts: PromptWindow

    def prompt_current(self) -> dict[str, Any]:
        return self._prompts.current()

    def prompt_answer(self, question_id: int, answer: str) -> bool:
        return self._prompts.answer(int(question_id), str(answer))

    def prompt_cancel(self, question_id: int) -> bool:
        return self._prompts.cancel(int(question_id))
