"""Fixtures for remote tests: real sshd pair, real remote servers, a tunnel spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.ssh_command import TunnelSpec
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.remote.servers import ServeProcess, cellucid_serve, desktop_serve
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
def local_api(small_h5ad: Path) -> Iterator[str]:
    """Our server on the same file, read locally: what the remote answers must equal."""
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id="remote-data", name="Remote data")
    server = ServerThread(registry).start()
    yield server.url
    server.stop()


def spec_for(lab: SshLab, remote_port: int, **changes: object) -> TunnelSpec:
    """A spec for the 'login' alias of the lab's ssh config."""
    return TunnelSpec(**{"target": "login", "remote_port": remote_port,
                         "config_file": str(lab.config), **changes})


# The desktop engineer's GUI harness (Xvfb, D-Bus, the app under test), shared rather
# than duplicated, for the remote viewer window test.
from tests.desktop.conftest import app_env, launch  # noqa: E402,F401
