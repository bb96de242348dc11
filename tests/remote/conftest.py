"""Fixtures for remote tests: real sshd pair, password + one-time-code sshds, a private
Slurm, real remote servers, a tunnel spec, a prompt broker with a scripted user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.ssh_command import TunnelSpec
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.remote.mfa_sshd import MfaSshd
from tests.remote.servers import ServeProcess, SocketServe, cellucid_serve, desktop_serve
from tests.remote.signin import ScriptedUser
from tests.remote.slurm import SlurmCluster
from tests.remote.sshd import SshLab, keygen


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    lab = SshLab(tmp_path_factory.mktemp("ssh")).start()
    yield lab
    lab.stop()


def _mfa_sshd(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[MfaSshd]:
    root = tmp_path_factory.mktemp(name)
    sshd = MfaSshd(root, "sshd", keygen(root / "host_ed25519"))
    try:
        yield sshd.start()
    finally:
        sshd.stop()


@pytest.fixture(scope="session")
def mfa_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfaSshd]:
    """An sshd asking for a password, then a one-time code (its own user and host key)."""
    yield from _mfa_sshd(tmp_path_factory, "mfa")


@pytest.fixture(scope="session")
def mfa_jump_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfaSshd]:
    """A second one (another user and host key), used as a jump host."""
    yield from _mfa_sshd(tmp_path_factory, "mfa-jump")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """A private single-node Slurm (munged, slurmctld, slurmd) on loopback."""
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture()
def user() -> ScriptedUser:
    """The person at the keyboard: script answers with ``user.script(...)``."""
    return ScriptedUser()


@pytest.fixture()
def broker(user: ScriptedUser) -> Iterator[PromptBroker]:
    """A prompt broker relaying every ssh prompt to ``user``."""
    with PromptBroker(user) as running:
        yield running
    assert not user.unexpected, f"asked more than scripted: {user.texts}"


@pytest.fixture(scope="session")
def g2_remote(small_h5ad: Path) -> Iterator[ServeProcess]:
    """cellucid serve 0.9.5 --no-web-ui on 127.0.0.1:<free port>."""
    server = cellucid_serve(small_h5ad)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def desktop_remote(small_h5ad: Path) -> Iterator[ServeProcess]:
    server = desktop_serve(small_h5ad)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def socket_remote(small_h5ad: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[SocketServe]:
    """Our server on a Unix socket, as on a shared login node."""
    server = SocketServe(small_h5ad, tmp_path_factory.mktemp("remote") / "run")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_api(small_h5ad: Path) -> Iterator[str]:
    """Our server on the same file, read locally (no token): what the remote answers
    must equal."""
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id="remote-data", name="Remote data")
    server = ServerThread(registry, token=None).start()
    yield server.url
    server.stop()


def spec_for(lab: SshLab, remote_port: int, **changes: object) -> TunnelSpec:
    """A spec for the 'login' alias of the lab's ssh config."""
    return TunnelSpec(**{"target": "login", "remote_port": remote_port,
                         "config_file": str(lab.config), **changes})


# The desktop engineer's GUI harness (Xvfb, D-Bus, the app under test), shared rather
# than duplicated, for the remote viewer window test.
from tests.desktop.conftest import app_env, launch  # noqa: E402,F401
