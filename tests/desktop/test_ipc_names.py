"""Every name crossing a boundary of the desktop app is in desktop/ipc.py, and only names
that exist are there: the pages call listed bridge methods, the bridges offer exactly the
listed ones, the tray's menu sends only commands the app handles."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from cellucid_desktop.desktop import ipc
from cellucid_desktop.desktop.bridge import PageApi, ViewerApi
from cellucid_desktop.desktop.tray import MENU, SUBMENUS

PACKAGE = Path(ipc.__file__).resolve().parents[1]
CALL = re.compile(r"\bapi\.([A-Za-z_]\w*)\(")


def _public_methods(cls: type) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def _calls(folder: Path, *patterns: str) -> set[str]:
    return {name for pattern in patterns for path in folder.glob(pattern)
            for name in CALL.findall(path.read_text())}


def test_our_pages_call_only_listed_bridge_methods_and_each_exists() -> None:
    called = _calls(PACKAGE / "desktop" / "pages", "*.js", "*.html")
    assert called and called <= ipc.PAGE_BRIDGE, called - ipc.PAGE_BRIDGE
    assert _public_methods(PageApi) == ipc.PAGE_BRIDGE


def test_the_viewer_calls_only_the_viewer_bridge_which_offers_nothing_else() -> None:
    called = _calls(PACKAGE / "viewer" / "static" / "js", "*.js")
    assert called & ipc.VIEWER_BRIDGE == ipc.VIEWER_BRIDGE  # every method is used
    assert not called & (ipc.PAGE_BRIDGE - ipc.VIEWER_BRIDGE)  # no page method
    assert _public_methods(ViewerApi) == ipc.VIEWER_BRIDGE


def test_the_tray_menu_sends_only_commands_the_app_handles() -> None:
    from cellucid_desktop.desktop.app import DesktopApp

    source = inspect.getsource(DesktopApp.on_tray_command)
    handled = {c for c in ipc.TrayCommand if f"TrayCommand.{c.name}" in source}
    sent = {entry[0] for entry in MENU if entry and entry[0] not in SUBMENUS}
    sent |= {command for command, _empty in SUBMENUS.values()}
    assert sent == handled == set(ipc.TrayCommand) - {ipc.TrayCommand.READY}
