"""Session-wide X server, D-Bus session bus and tray host for the desktop GUI tests.

Each is started here and stopped by PID, so nothing is left behind and no other test's
display or bus is touched.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.desktop.gui import App, new_token, xdotool
from tests.helpers import wait_for


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def xserver() -> Iterator[str]:
    """A private Xvfb (1280x800x24) on a display number it picks itself (-displayfd)."""
    proc = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], stdout=subprocess.PIPE, text=True)
    number = proc.stdout.readline().strip()
    assert number.isdigit(), "Xvfb did not start (is the xvfb package installed?)"
    yield f":{number}"
    _stop(proc)


@pytest.fixture(scope="session")
def session_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private D-Bus session bus, so GLib never autolaunches one that outlives the tests."""
    address = f"unix:path={tmp_path_factory.mktemp('dbus') / 'bus'}"
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--address={address}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: Path(address.removeprefix("unix:path=")).exists(), 20, what="dbus-daemon")
    yield address
    _stop(proc)


@pytest.fixture(scope="session")
def tray_host(xserver: str) -> Iterator[str]:
    """trayer, an XEmbed system tray, docked at the top right; yields its panel window."""
    env = {**os.environ, "DISPLAY": xserver}
    proc = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype",
                             "request", "--height", "32", "--SetDockType", "true",
                             "--transparent", "false"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    def panel() -> str | None:  # trayer's own window and its "panel", where icons dock
        ids = xdotool(env, "search", "--class", "trayer").split()
        return next((w for w in ids if xdotool(env, "getwindowname", w) == "panel"), None)

    yield wait_for(panel, 20, what="trayer's panel window")
    _stop(proc)


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
