"""Test helpers for signing in: a scripted user answering prompts, and a broker for it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Union

from cellucid_desktop.remote.prompt_broker import PromptRequest

Answer = Union[str, None, Callable[[PromptRequest], Union[str, None]]]


class ScriptedUser:
    """A front end that answers prompts in order from ``answers`` (a string, None to
    cancel, or a callable of the request) and records every request it was asked.
    Asked more often than scripted, it fails the test (and cancels the sign-in)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.asked: list[PromptRequest] = []
        self.unexpected: list[PromptRequest] = []
        self._lock = threading.Lock()

    def __call__(self, request: PromptRequest) -> str | None:
        with self._lock:
            self.asked.append(request)
            if not self.answers:
                self.unexpected.append(request)
                return None
            answer = self.answers.pop(0)
        return answer(request) if callable(answer) else answer

    @property
    def texts(self) -> list[str]:
        return [request.prompt.text for request in self.asked]

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self.answers.extend(answers)


def locked_key(lab, folder: Path, passphrase: str) -> tuple[Path, Path]:
    """A copy of ``lab``'s user key protected by ``passphrase``, and an ssh config whose
    alias ``login`` reaches the lab's login sshd as root (give the key with ``-i``)."""
    from tests.remote.mfa_sshd import client_config

    key = folder / "id_locked"
    key.write_bytes(lab.user_key.read_bytes())
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", passphrase, "-f", str(key)],
                   check=True, capture_output=True)
    config = client_config(folder / "ssh_config", lab.known_hosts,
                           {"login": (lab.login.port, "root")})
    return key, config
