"""The SSH_ASKPASS helper and its broker: every form of the helper relays a prompt, only
with the launch secret, over a private Unix socket or loopback TCP, importing nothing heavy."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

from cellucid_desktop.remote import askpass
from cellucid_desktop.remote.master import Master
from cellucid_desktop.remote.prompt_broker import PromptBroker, askpass_program, module_wrapper
from cellucid_desktop.remote.prompts import PromptKind
from cellucid_desktop.remote.ssh_command import HostSpec
from tests.remote.mfa_sshd import MfaSshd, client_config, known_host_line
from tests.remote.signin import ScriptedUser

ROOT = Path(__file__).resolve().parents[2]


def _helper(program: str, env: dict[str, str], prompt: str,
            hint: str = "") -> subprocess.CompletedProcess:
    """Run the helper as ssh does: the prompt as its only argument, answer on stdout."""
    env = {**env, askpass.HINT_ENV: hint} if hint else env
    return subprocess.run([program, prompt], env=env, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_the_installed_executable_relays_a_prompt_and_prints_the_answer(
        broker: PromptBroker, user: ScriptedUser) -> None:
    assert broker.program == str(Path(sys.executable).with_name("cellucid-desktop"))
    user.script("s3cret with spaces")
    session = broker.session("login.example.org")
    done = _helper(broker.program, session.env(), "(alice@login) Password: ")
    assert (done.returncode, done.stdout) == (0, "s3cret with spaces\n"), done.stderr
    [request] = user.asked
    assert (request.prompt.text, request.connection) == ("(alice@login) Password: ",
                                                         "login.example.org")


def test_the_python_m_form_relays_too(broker: PromptBroker, user: ScriptedUser) -> None:
    user.script("yes")
    wrapper = module_wrapper()
    assert stat.S_IMODE(wrapper.stat().st_mode) == 0o700
    env = {k: v for k, v in broker.session("h").env().items() if k != "PYTHONPATH"}
    done = _helper(str(wrapper), env, "Are you sure you want to continue connecting "
                   "(yes/no)? ")
    assert (done.returncode, done.stdout) == (0, "yes\n"), done.stderr
    assert user.asked[0].prompt.kind is PromptKind.CONFIRM


def test_cancel_exits_1_and_prints_nothing(broker: PromptBroker, user: ScriptedUser) -> None:
    user.script(None)
    done = _helper(broker.program, broker.session("h").env(), "(a@h) Password: ")
    assert (done.returncode, done.stdout) == (askpass.EXIT_CANCELLED, "")
    assert "cancelled" in done.stderr


def test_an_answer_ssh_would_cut_at_a_newline_is_not_passed_on(
        broker: PromptBroker, user: ScriptedUser) -> None:
    user.script("first line\nsecond line")
    done = _helper(broker.program, broker.session("h").env(), "(a@h) Password: ")
    assert (done.returncode, done.stdout) == (askpass.EXIT_CANCELLED, "")


def test_a_helper_without_the_launch_secret_is_refused(broker: PromptBroker,
                                                       user: ScriptedUser) -> None:
    env = {**broker.session("h").env(), askpass.SECRET_ENV: "guessed"}
    done = _helper(broker.program, env, "(a@h) Password: ")
    assert (done.returncode, done.stdout) == (askpass.EXIT_CANCELLED, "")
    assert user.asked == []


def test_a_prompt_after_the_session_closed_is_not_asked(broker: PromptBroker,
                                                        user: ScriptedUser) -> None:
    session = broker.session("h")
    session.close()
    done = _helper(broker.program, session.env(), "(a@h) Password: ")
    assert done.returncode == askpass.EXIT_CANCELLED and user.asked == []


def test_a_notice_is_shown_and_answered_at_once(broker: PromptBroker,
                                                user: ScriptedUser) -> None:
    user.script("")
    done = _helper(broker.program, broker.session("h").env(),
                   "Confirm user presence for key ED25519-SK SHA256:abc", hint="none")
    assert done.returncode == 0
    assert user.asked[0].prompt.kind is PromptKind.NOTICE


def test_the_helper_outside_the_app_says_so() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLUCID_ASKPASS")}
    done = _helper(askpass_program(), {**env, askpass.ACTIVATE_ENV: "1"}, "Password: ")
    assert done.returncode == askpass.EXIT_NOT_STARTED
    assert "not started by Cellucid Desktop" in done.stderr


def test_the_socket_is_private(broker: PromptBroker) -> None:
    path = Path(broker.address.removeprefix("unix:"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.parent.stat().st_uid == os.getuid()


IMPORTS = """
import sys
import threading
from cellucid_desktop.cli import main
code = main(["(a@h) Password: "])
print("MODULES", sorted(m for m in sys.modules if m.startswith("cellucid_desktop")
                        or m in ("flask", "numpy", "h5py", "webview", "waitress")))
sys.exit(code)
"""


def test_the_executable_acts_as_the_helper_before_importing_anything_heavy(
        broker: PromptBroker, user: ScriptedUser) -> None:
    user.script("pw")
    done = subprocess.run([sys.executable, "-c", IMPORTS], env=broker.session("h").env(),
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    answer, modules = done.stdout.split("MODULES ")
    assert answer == "pw\n"
    assert json.loads(modules.replace("'", '"')) == [
        "cellucid_desktop", "cellucid_desktop.cli", "cellucid_desktop.remote",
        "cellucid_desktop.remote.askpass"]


WITHOUT_AF_UNIX = """
import socket
del socket.AF_UNIX
from cellucid_desktop.remote.prompt_broker import PromptBroker
broker = PromptBroker(lambda request: None).start()
print(broker.transport, broker.address)
"""


def test_without_af_unix_the_broker_listens_on_loopback_tcp() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_AF_UNIX], capture_output=True,
                          text=True, timeout=30, cwd=ROOT)
    transport, address = done.stdout.split()
    assert transport == "tcp" and address.startswith("tcp:127.0.0.1:"), done.stderr


def test_a_real_sign_in_through_loopback_tcp(mfa_sshd: MfaSshd, tmp_path: Path) -> None:
    user = ScriptedUser(mfa_sshd.password, lambda request: mfa_sshd.code())
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(known_host_line(mfa_sshd))
    config = client_config(tmp_path / "ssh_config", known_hosts,
                           {"mfa": (mfa_sshd.port, mfa_sshd.user)})
    with PromptBroker(user, transport="tcp") as broker:
        host, port = broker.address.removeprefix("tcp:").rsplit(":", 1)
        assert host == "127.0.0.1"
        with socket.create_connection((host, int(port))):
            pass  # listening on loopback
        master = Master(HostSpec("mfa", config_file=str(config)), broker).start()
        try:
            assert master.run(["echo", "over tcp"]).stdout == "over tcp\n"
        finally:
            master.close()
    assert user.texts == mfa_sshd.prompts()


def test_a_closed_broker_stops_listening_and_leaves_no_thread(user: ScriptedUser) -> None:
    """Its accept thread closes the socket itself: closed from another thread, the fd
    number was reused by the next broker's socket while the old thread went on accepting
    on it, so prompts reached a closed broker (seen under load, two suites at once)."""
    broker = PromptBroker(user).start()
    thread = broker._thread
    path = Path(broker.address.removeprefix("unix:"))
    broker.close()
    assert not thread.is_alive()
    assert not path.exists()
    assert not [t for t in threading.enumerate() if t is thread]
