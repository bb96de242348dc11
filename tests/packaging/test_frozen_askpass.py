"""The frozen binary is its own SSH_ASKPASS helper: run as ssh runs it (the prompt as its
only argument, CELLUCID_DESKTOP_ASKPASS=1), it relays the prompt to the app's broker and
prints the answer, without starting the app."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cellucid_desktop.remote.prompt_broker import PromptBroker
from tests.remote.signin import ScriptedUser


def test_the_frozen_binary_relays_a_prompt_to_the_broker(frozen_app: Path) -> None:
    user = ScriptedUser("answer from the app")
    with PromptBroker(user, program=str(frozen_app)) as broker:
        env = broker.session("login.example.org").env()
        assert env["SSH_ASKPASS"] == str(frozen_app)
        done = subprocess.run([str(frozen_app), "(alice@login) Password: "], env=env,
                              capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (0, "answer from the app\n"), done.stderr
    assert user.texts == ["(alice@login) Password: "]
