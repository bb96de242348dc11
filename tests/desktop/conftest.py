"""The tray host and the app launcher of the desktop GUI tests (the X server and the
D-Bus session bus they use are the whole run's, from tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.desktop.gui import App, new_token, xdotool
from tests.helpers import GiveUp, stop_process, wait_for


@pytest.fixture(scope="session")
def tray_host(xserver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """trayer, an XEmbed system tray, docked at the top right; yields its panel window.
    If trayer exits instead, the wait ends at once with what it said."""
    env = {**os.environ, "DISPLAY": xserver}
    said = tmp_path_factory.mktemp("trayer") / "trayer.log"
    with open(said, "wb") as log:
        proc = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype",
                                 "request", "--height", "32", "--SetDockType", "true",
                                 "--transparent", "false"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)

    def panel() -> str | None:  # trayer's own window and its "panel", where icons dock
        if proc.poll() is not None:
            raise GiveUp(f"trayer exited ({proc.returncode}): {said.read_text()!r}")
        ids = xdotool(env, "search", "--class", "trayer").split()
        return next((w for w in ids if xdotool(env, "getwindowname", w) == "panel"), None)

    yield wait_for(panel, 20, what="trayer's panel window")
    stop_process(proc)


@pytest.fixture()
def app_env(xserver: str, session_bus: str, isolated_user_dirs: Path) -> dict[str, str]:
    """The app's environment: our display and bus, this test's XDG folders, a test token."""
    return {**os.environ, "DISPLAY": xserver, "DBUS_SESSION_BUS_ADDRESS": session_bus,
            "NO_AT_BRIDGE": "1", "CELLUCID_DESKTOP_TEST_TOKEN": new_token(),
            "PYTHONUNBUFFERED": "1"}


@pytest.fixture()
def launch(app_env: dict[str, str]) -> Iterator[Callable[..., App]]:
    """Start the app (arguments as on the command line); every app is stopped at the end."""
    apps: list[App] = []

    def start(*args: str) -> App:
        app = App(app_env, *args)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.stop()
