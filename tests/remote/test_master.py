"""One authenticated master per host, against real sshds: a key-only host (no prompt at
all), a host asking for a password and a one-time code (PAM), and such a host as a jump
host. Prompts are answered by a scripted user through the real SSH_ASKPASS relay."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.errors import SshProblem
from cellucid_desktop.remote.master import Master, MasterPool, multiplexing_available
from cellucid_desktop.remote.prompts import PromptKind, Role
from cellucid_desktop.remote.ssh_command import Forward, HostSpec, SpecError
from cellucid_desktop.remote.ssh_process import SshError, SshState
from tests.helpers import free_port, wait_for
from tests.remote.mfa_sshd import MfaSshd, client_config, known_host_line
from tests.remote.signin import ScriptedUser, locked_key
from tests.remote.sshd import SshLab, children, keygen


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = f"served by {self.server.label}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # BaseHTTPRequestHandler wants a (host, port) client address
        conn, _ = super().get_request()
        return conn, ("unix", 0)


def _serve(server: socketserver.BaseServer, label: str) -> socketserver.BaseServer:
    server.label = label
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture()
def web() -> Iterator[socketserver.BaseServer]:
    """A small HTTP server on 127.0.0.1 (the "remote" server a forward reaches)."""
    server = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler), "tcp")
    yield server
    server.shutdown()
    server.server_close()


def _get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
        return answer.read().decode()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _mfa_host(tmp_path: Path, *sshds: MfaSshd, known: bool = True,
              extra: list[str] = ()) -> HostSpec:
    """A HostSpec for alias ``mfa`` (the first sshd; ``mfa-jump`` for a second one as its
    jump host), with a per-test known-hosts file holding their keys if ``known``."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("".join(known_host_line(s) for s in sshds) if known else "")
    aliases = dict(zip(("mfa", "mfa-jump"), ((s.port, s.user) for s in sshds)))
    config = client_config(tmp_path / "ssh_config", known_hosts, aliases,
                           ["  PubkeyAuthentication no", *extra])
    return HostSpec("mfa", jump=("mfa-jump",) if len(sshds) > 1 else (),
                    config_file=str(config))


def _sign_in(mfa: MfaSshd) -> list:
    """The scripted answers of a user who knows the password and has the phone."""
    return [mfa.password, lambda request: mfa.code()]


def test_key_only_host_signs_in_without_any_prompt(ssh_lab: SshLab, broker,
                                                   user: ScriptedUser) -> None:
    master = Master(HostSpec("login", config_file=str(ssh_lab.config)), broker).start()
    try:
        assert master.run(["echo", "key login"]).stdout == "key login\n"
    finally:
        master.close()
    assert user.asked == []


def test_password_and_code_are_asked_once_then_commands_and_forwards_need_none(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path, web) -> None:
    user.script(*_sign_in(mfa_sshd))
    master = Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    try:
        assert user.texts == mfa_sshd.prompts()
        assert [(r.prompt.kind, r.prompt.role) for r in user.asked] == \
            [(PromptKind.SECRET, Role.PASSWORD), (PromptKind.SECRET, Role.CODE)]
        assert all(r.connection == "mfa" for r in user.asked)

        quoted = master.run(["printf", "%s|", "a b", "$(id)", "'q'", "*"])
        assert (quoted.returncode, quoted.stdout) == (0, "a b|$(id)|'q'|*|")
        failed = master.run(["sh", "-c", "echo oops >&2; exit 3"])
        assert (failed.returncode, failed.stderr) == (3, "oops\n")
        assert master.run(["id", "-un"]).stdout.strip() == mfa_sshd.user

        first = master.forward(Forward.tcp(free_port(), "127.0.0.1", web.server_address[1]))
        assert _get(first.local_port) == "served by tcp"
        master.cancel(first)
        assert not _listening(first.local_port)
        second = master.forward(Forward.tcp(free_port(), "127.0.0.1", web.server_address[1]))
        assert _get(second.local_port) == "served by tcp"
        assert master.check()
    finally:
        master.close()
    assert len(user.asked) == 2
    assert master.state is SshState.CLOSED and master.pid is None
    assert not master.control_path.exists()


def test_a_remote_unix_socket_is_forwarded(mfa_sshd: MfaSshd, broker, user: ScriptedUser,
                                           tmp_path: Path) -> None:
    """The server's socket in the user's own 0700 folder, as on a shared login node."""
    folder = mfa_sshd.home / f"sockets-{os.getpid()}"
    folder.mkdir(mode=0o700)
    path = folder / "server.sock"
    server = _serve(_UnixHTTPServer(str(path), _Handler), "unix")
    os.chown(folder, *_ids(mfa_sshd.user))
    os.chown(path, *_ids(mfa_sshd.user))
    user.script(*_sign_in(mfa_sshd))
    master = Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    try:
        forward = master.forward(Forward.unix(free_port(), str(path)))
        assert _get(forward.local_port) == "served by unix"
    finally:
        master.close()
        server.shutdown()
        server.server_close()


def _ids(name: str) -> tuple[int, int]:
    import pwd
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def test_wrong_password_fails_once_with_one_sentence(mfa_sshd: MfaSshd, broker,
                                                     user: ScriptedUser, tmp_path: Path) -> None:
    user.script("not the password")
    failures = mfa_sshd.failed_attempts()
    with pytest.raises(SshError) as failed:
        Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    assert mfa_sshd.failed_attempts() == failures + 1
    assert failed.value.problem.kind == "password-rejected"
    assert str(failed.value) == ("mfa did not accept the password; the app asks only once, "
                                 "so connect again to retry.")
    assert user.texts == mfa_sshd.prompts()[:1]


def test_wrong_code_fails_once_with_one_sentence(mfa_sshd: MfaSshd, broker,
                                                 user: ScriptedUser, tmp_path: Path) -> None:
    user.script(mfa_sshd.password, lambda request: mfa_sshd.wrong_code())
    failures = mfa_sshd.failed_attempts()
    with pytest.raises(SshError) as failed:
        Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    assert mfa_sshd.failed_attempts() == failures + 1
    assert failed.value.problem.kind == "code-rejected"
    assert "did not accept the one-time code" in str(failed.value)
    assert user.texts == mfa_sshd.prompts()


def test_cancelling_a_prompt_ends_the_sign_in_without_asking_more(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    user.script(None)
    with pytest.raises(SshError) as failed:
        Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    assert failed.value.problem.kind == "sign-in-cancelled"
    assert str(failed.value) == "Sign-in to mfa was cancelled."
    assert len(user.asked) == 1


def _fingerprint(sshd: MfaSshd) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", f"{sshd.host_key}.pub"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_unknown_host_key_shows_host_and_fingerprint_and_is_saved_only_if_accepted(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    host = _mfa_host(tmp_path, mfa_sshd, known=False)
    known_hosts = tmp_path / "known_hosts"
    user.script("no")
    with pytest.raises(SshError) as failed:
        Master(host, broker).start()
    question = user.asked[0].prompt
    assert question.kind is PromptKind.HOST_KEY
    assert (question.host, question.key_type, question.fingerprint) == \
        (f"[127.0.0.1]:{mfa_sshd.port}", "ED25519", _fingerprint(mfa_sshd))
    assert question.text.endswith("(yes/no/[fingerprint])? ")
    assert failed.value.problem.kind == "host-key-rejected"
    assert _fingerprint(mfa_sshd) in str(failed.value)
    assert known_hosts.read_text() == ""

    user.script("yes", *_sign_in(mfa_sshd))
    master = Master(host, broker).start()
    master.close()
    assert user.texts[2:] == mfa_sshd.prompts()
    assert f"[127.0.0.1]:{mfa_sshd.port} ssh-ed25519 " in known_hosts.read_text()


def test_a_jump_host_asking_its_own_password_is_asked_separately(
        mfa_sshd: MfaSshd, mfa_jump_sshd: MfaSshd, broker, user: ScriptedUser,
        tmp_path: Path, web) -> None:
    user.script(*_sign_in(mfa_jump_sshd), *_sign_in(mfa_sshd))
    master = Master(_mfa_host(tmp_path, mfa_sshd, mfa_jump_sshd), broker).start()
    try:
        assert user.texts == mfa_jump_sshd.prompts() + mfa_sshd.prompts()
        assert master.run(["id", "-un"]).stdout.strip() == mfa_sshd.user
        # the compute-node form: the far side reaches a node by name (this machine's)
        node = socket.gethostname().split(".")[0]
        forward = master.forward(Forward.tcp(free_port(), node, web.server_address[1]))
        assert _get(forward.local_port) == "served by tcp"
    finally:
        master.close()
    assert len(user.asked) == 4


def test_a_wrong_jump_host_password_names_the_jump_host(
        mfa_sshd: MfaSshd, mfa_jump_sshd: MfaSshd, broker, user: ScriptedUser,
        tmp_path: Path) -> None:
    user.script("wrong")
    failures = mfa_jump_sshd.failed_attempts()
    with pytest.raises(SshError) as failed:
        Master(_mfa_host(tmp_path, mfa_sshd, mfa_jump_sshd), broker).start()
    # the jump host's own ssh would try three times (it does not get our options): the
    # retry is refused and ssh stopped before a second answer reaches the server
    assert mfa_jump_sshd.failed_attempts() == failures + 1
    assert str(failed.value) == ("the jump host mfa-jump did not accept the password; the "
                                 "app asks only once, so connect again to retry.")
    assert user.texts == mfa_jump_sshd.prompts()[:1]


def test_an_unknown_jump_host_key_names_the_jump_host(
        mfa_sshd: MfaSshd, mfa_jump_sshd: MfaSshd, broker, user: ScriptedUser,
        tmp_path: Path) -> None:
    host = _mfa_host(tmp_path, mfa_sshd, mfa_jump_sshd, known=False)
    user.script("no")
    with pytest.raises(SshError) as declined:
        Master(host, broker).start()
    assert user.asked[0].prompt.host == f"[127.0.0.1]:{mfa_jump_sshd.port}"
    assert str(declined.value).startswith("You did not accept the host key of the jump "
                                          "host mfa-jump (ED25519 SHA256:")

    strict = _mfa_host(tmp_path, mfa_sshd, mfa_jump_sshd, known=False,
                       extra=["  StrictHostKeyChecking yes"])
    with pytest.raises(SshError) as refused:
        Master(strict, broker).start()
    assert refused.value.problem.kind == "host-key-unknown"
    assert str(refused.value).startswith("the jump host mfa-jump is not in your known hosts")
    assert len(user.asked) == 1


def test_a_wrong_key_passphrase_is_asked_once(ssh_lab: SshLab, broker, user: ScriptedUser,
                                              tmp_path: Path) -> None:
    key, config = locked_key(ssh_lab, tmp_path, "right horse")
    host = HostSpec("login", config_file=str(config), identity_file=str(key))
    user.script("wrong horse")
    with pytest.raises(SshError) as failed:
        Master(host, broker).start()
    assert str(failed.value) == (f"The passphrase for {key} was not accepted; connect again "
                                 "to retry.")
    assert user.texts == [f"Enter passphrase for key '{key}': "]

    user.script("right horse")
    Master(host, broker).start().close()
    assert len(user.asked) == 2


def test_too_many_failed_keys_are_explained(ssh_lab: SshLab, broker, user: ScriptedUser,
                                            tmp_path: Path) -> None:
    """sshd's MaxAuthTries (6) ends the connection when ssh offers more keys than that."""
    keys = [keygen(tmp_path / f"stranger{n}") for n in range(7)]
    host = HostSpec("login-wrong-key", config_file=str(ssh_lab.config),
                    options=tuple(f"IdentityFile={key}" for key in keys))
    with pytest.raises(SshError) as failed:
        Master(host, broker).start()
    assert failed.value.problem.kind == "too-many-failures"
    assert str(failed.value).startswith("login-wrong-key closed the connection after too "
                                        "many failed sign-in attempts")
    assert user.asked == []


def test_a_master_whose_server_session_dies_is_reported_lost(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    user.script(*_sign_in(mfa_sshd))
    master = Master(_mfa_host(tmp_path, mfa_sshd), broker).start()
    reports = []
    master.add_listener(reports.append)
    try:
        assert mfa_sshd.kill_sessions() >= 1
        wait_for(lambda: reports, 30, what="the lost master to be reported")
        assert master.state is SshState.LOST and not master.alive
        assert reports[0].kind == "connection-lost"
        assert reports[0].message == ("The SSH connection to mfa was lost. (ssh: Connection to "
                                      "127.0.0.1 closed by remote host.)")
        with pytest.raises(SshError) as failed:
            master.run(["true"])
        assert failed.value.problem == reports[0]
    finally:
        master.close()
    assert len(user.asked) == 2


def test_a_busy_local_port_is_refused_naming_its_holder(ssh_lab: SshLab, broker) -> None:
    master = Master(HostSpec("login", config_file=str(ssh_lab.config)), broker).start()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        with pytest.raises(SshError) as failed:
            master.forward(Forward.tcp(holder.getsockname()[1], "127.0.0.1", 9))
        assert failed.value.problem.kind == "local-port-busy"
        assert f"{holder.getsockname()[1]} is already in use by " in str(failed.value)
        assert f"(PID {os.getpid()})" in str(failed.value)
        assert master.check()
    finally:
        holder.close()
        master.close()


def test_concurrent_users_of_one_host_share_one_sign_in(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    user.script(*_sign_in(mfa_sshd))
    pool = MasterPool(broker)
    host = _mfa_host(tmp_path, mfa_sshd)
    got: list[Master] = []
    threads = [threading.Thread(target=lambda: got.append(pool.get(host))) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(got) == 3 and got[0] is got[1] is got[2] and got[0].alive
        assert len(user.asked) == 2
    finally:
        pool.close_all()
    assert not got[0].alive


def test_after_a_lost_master_the_pool_asks_again_and_says_why(
        mfa_sshd: MfaSshd, broker, user: ScriptedUser, tmp_path: Path) -> None:
    user.script(*_sign_in(mfa_sshd))
    pool = MasterPool(broker)
    host = _mfa_host(tmp_path, mfa_sshd)
    try:
        first = pool.get(host)
        mfa_sshd.kill_sessions()
        wait_for(lambda: first.state is SshState.LOST, 30, what="the master to be lost")
        user.script(*_sign_in(mfa_sshd))
        second = pool.get(host)
        assert second is not first and second.alive
        assert user.asked[2].reason.startswith("The SSH connection to mfa was lost.")
        assert user.asked[2].reason.endswith("Sign in again to continue.")
    finally:
        pool.close_all()


def test_the_control_socket_is_in_a_private_short_folder(ssh_lab: SshLab, broker) -> None:
    master = Master(HostSpec("login", config_file=str(ssh_lab.config)), broker).start()
    try:
        folder = master.control_path.parent
        info = folder.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (os.getuid(), 0o700)
        assert len(str(master.control_path)) < 80
        assert master.control_path.is_socket()
    finally:
        master.close()


MASTER_IN_A_CHILD = """
import sys, time
from cellucid_desktop.remote.master import Master
from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.ssh_command import HostSpec
broker = PromptBroker(lambda request: None).start()
master = Master(HostSpec("login", config_file=sys.argv[1]), broker).start()
print(master.pid, flush=True)
time.sleep(600)
"""


def test_the_master_dies_with_the_app(ssh_lab: SshLab) -> None:
    app = subprocess.Popen([sys.executable, "-c", MASTER_IN_A_CHILD, str(ssh_lab.config)],
                           stdout=subprocess.PIPE, text=True)
    try:
        ssh_pid = int(app.stdout.readline())
        assert ssh_pid in children(app.pid)
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait()
    wait_for(lambda: not Path(f"/proc/{ssh_pid}").exists()
             or Path(f"/proc/{ssh_pid}/stat").read_text().split()[2] == "Z", 10,
             what="the master's ssh to end with its parent")


def test_this_ssh_client_can_multiplex() -> None:
    assert multiplexing_available()
    assert not multiplexing_available("/nonexistent/ssh")


def test_a_target_ssh_would_read_as_an_option_never_reaches_ssh(broker) -> None:
    with pytest.raises(SpecError):
        Master(HostSpec("-oProxyCommand=touch /tmp/x"), broker)


def test_a_master_being_discarded_is_never_handed_out_again(ssh_lab: SshLab,
                                                            broker) -> None:
    """A frozen master takes seconds to end (its ssh does not answer SIGTERM): callers
    asking the pool meanwhile get a fresh master, told why, not the frozen one."""
    pool = MasterPool(broker)
    host = HostSpec("login", config_file=str(ssh_lab.config))
    try:
        frozen = pool.get(host)
        os.kill(frozen.pid, signal.SIGSTOP)
        discarding = threading.Thread(target=pool.discard, args=(
            frozen, SshProblem("not-answering", "The link froze.", True)))
        discarding.start()
        wait_for(lambda: frozen._closing.is_set(), 10, what="the discard to begin")
        fresh = pool.get(host)
        assert fresh is not frozen and fresh.alive
        assert fresh.reason == "The link froze. Sign in again to continue."
        discarding.join(30)
        assert not frozen.alive
    finally:
        pool.close_all()
