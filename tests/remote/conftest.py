"""Fixtures for remote tests: real sshd pair, real remote servers, a tunnel spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.ssh_command import TunnelSpec
from tests.remote.servers import ServeProcess, SocketServe, cellucid_serve, desktop_serve
from tests.remote.sshd import SshLab


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshLab]:
    lab = SshLab(tmp_path_factory.mktemp("ssh")).start()
    yield lab
    lab.stop()


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


def spec_for(lab: SshLab, remote_port: int, **changes: object) -> TunnelSpec:
    """A spec for the 'login' alias of the lab's ssh config."""
    return TunnelSpec(**{"target": "login", "remote_port": remote_port,
                         "config_file": str(lab.config), **changes})


# The desktop engineer's GUI harness (Xvfb, D-Bus, the app under test), shared rather
# than duplicated, for the remote viewer window test.
from tests.desktop.conftest import app_env, launch  # noqa: E402,F401
