"""Signing in from the app under Xvfb: the connect dialog's *Sign in* against a real sshd
asking a password and a one-time code (and, first, an unknown host key), the questions
shown in the app's own prompt window and answered through its page, as a user would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.desktop.gui import App, descendants, run_cli, running
from tests.helpers import wait_for
from tests.remote.mfa_sshd import MfaSshd, known_host_line
from tests.remote.test_connect_window import _fill_dialog


def _form(mfa: MfaSshd, known_hosts: Path) -> dict[str, object]:
    """What a user types for a password + code host: no key, no ssh config alias."""
    return {"mode": "ssh", "target": f"{mfa.user}@127.0.0.1", "where": "host",
            "ssh_port": str(mfa.port),
            "options": f"UserKnownHostsFile={known_hosts}\nPubkeyAuthentication=no"}


def _question(app: App, kind: str, number: int) -> dict[str, object]:
    """Wait for the prompt window to show question ``number`` (counting from 1), of
    ``kind``; the question as the page shows it."""
    app.wait_window("prompt", "the sign-in window")
    shown = wait_for(lambda: (lambda q: q if q.get("id") == number else None)(
        app.eval("prompt", "window.cellucidPrompt ? window.cellucidPrompt.current() : {}")
        or {}), 60, what=f"sign-in question {number}")
    assert shown["kind"] == kind, shown
    assert app.eval("prompt", "document.documentElement.dataset.promptKind") == kind
    return shown


def _type_and_enter(app: App, text: str) -> None:
    """Type into the field and submit the form as Enter does."""
    app.eval("prompt", f"document.getElementById('answer').value = {json.dumps(text)};"
                       "document.getElementById('entry').requestSubmit()")


def _status(app: App, prefix: str) -> str:
    return wait_for(lambda: (lambda s: s if s.startswith(prefix) else None)(
        app.eval("connect", "window.cellucidConnect.status()")), 90, what=f"status {prefix}")


def _sign_in(launch, mfa: MfaSshd, tmp_path: Path, known: bool = True) -> tuple[App, Path]:  # noqa: ANN001
    """The app, its connect dialog filled for ``mfa`` and *Sign in* pressed; the
    known-hosts file (holding ``mfa``'s key if ``known``)."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_host_line(mfa) if known else "")
    app = launch()
    _fill_dialog(app, _form(mfa, known_hosts))
    app.eval("connect", "document.getElementById('sign-in').click()")
    return app, known_hosts


def _fingerprint(sshd: MfaSshd) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{sshd.host_key}.pub"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def _known(known_hosts: Path, sshd: MfaSshd) -> bool:
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f",
                            str(known_hosts)], capture_output=True, text=True)
    return found.returncode == 0 and "ssh-ed25519" in found.stdout


def test_the_sign_in_window_asks_password_then_code_once_and_masks_the_password(
        launch, mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    app, known_hosts = _sign_in(launch, mfa_sshd, tmp_path)

    password = _question(app, "secret", 1)
    assert password["text"] == mfa_sshd.prompts()[0]  # ssh's own words
    assert app.eval("prompt", "document.getElementById('text').textContent") == \
        mfa_sshd.prompts()[0]
    assert app.eval("prompt", "document.getElementById('answer').type") == "password"
    assert app.eval("prompt", "document.activeElement.id") == "answer"  # type at once
    _type_and_enter(app, mfa_sshd.password)
    code = _question(app, "secret", 2)
    assert code["text"] == mfa_sshd.prompts()[1]
    _type_and_enter(app, mfa_sshd.code())

    assert _status(app, "signed-in") == f"signed-in: Signed in to {mfa_sshd.user}@127.0.0.1."
    wait_for(lambda: app.windows()["prompt"]["hidden"], 30, what="the sign-in window hidden")
    assert [(p["text"], p["outcome"]) for p in app.prompts()] == \
        [(text, "answered") for text in mfa_sshd.prompts()]
    # signed in once per session: the next sign-in (and what runs over it) asks nothing
    app.eval("connect", "document.getElementById('status').textContent = '';"
                        "document.getElementById('sign-in').click()")
    _status(app, "signed-in")
    assert len(app.prompts()) == 2


def test_an_unknown_host_key_shows_host_and_fingerprint_rejected_then_accepted(
        launch, mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    app, known_hosts = _sign_in(launch, mfa_sshd, tmp_path, known=False)

    question = _question(app, "host-key", 1)
    assert app.eval("prompt", "document.getElementById('hk-fingerprint').textContent") == \
        _fingerprint(mfa_sshd)
    assert app.eval("prompt", "document.getElementById('hk-host').textContent") == \
        f"[127.0.0.1]:{mfa_sshd.port}"
    assert question["text"].endswith("(yes/no/[fingerprint])? ")
    assert app.eval("prompt", "document.activeElement.id") == "reject"  # the safe default
    app.eval("prompt", "document.getElementById('reject').click()")
    failed = _status(app, "failed")
    assert _fingerprint(mfa_sshd) in failed  # the sentence names what was refused
    assert app.eval("connect", "document.getElementById('error').hidden") is False
    assert not _known(known_hosts, mfa_sshd)

    app.eval("connect", "document.getElementById('sign-in').click()")
    _question(app, "host-key", 2)
    app.eval("prompt", "document.getElementById('accept').click()")
    _question(app, "secret", 3)
    _type_and_enter(app, mfa_sshd.password)
    _question(app, "secret", 4)
    _type_and_enter(app, mfa_sshd.code())
    _status(app, "signed-in")
    assert _known(known_hosts, mfa_sshd)  # saved (hashed or not, as ssh_config says)


def test_escape_cancels_the_sign_in_and_the_dialog_says_so(
        launch, mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    app, _known = _sign_in(launch, mfa_sshd, tmp_path)
    _question(app, "secret", 1)
    app.eval("prompt", "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
    assert _status(app, "failed") == \
        f"failed: Sign-in to {mfa_sshd.user}@127.0.0.1 was cancelled."
    assert [p["outcome"] for p in app.prompts()] == ["cancelled"]
    wait_for(lambda: app.windows()["prompt"]["hidden"], 30, what="the sign-in window hidden")


def test_quit_while_the_sign_in_window_waits_ends_the_app_and_its_ssh_at_once(
        launch, app_env, mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    app, _known = _sign_in(launch, mfa_sshd, tmp_path)
    _question(app, "secret", 1)
    ssh = [pid for pid in descendants(app.proc.pid)
           if Path(f"/proc/{pid}/comm").read_text().strip() == "ssh"]
    assert ssh, "the master's ssh waits for the password"
    assert run_cli(app_env, "quit").returncode == 0
    assert app.proc.wait(60) == 0
    log = Path(app_env["XDG_STATE_HOME"], "cellucid-desktop", "log", "cellucid-desktop.log")
    assert "Stopped" in log.read_text()  # a clean Quit,
    assert "did not close" not in log.read_text()  # not the forced exit after 20 s
    wait_for(lambda: not any(running(pid) for pid in ssh), 20, what="ssh gone with the app")
