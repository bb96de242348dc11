"""The tray icon, in its own child process (pystray needs its process's main thread on
macOS, and GTK's loop does not share a thread with Qt's; docs/desktop-stack.md §3-4).

Parent → child over a Pipe: ``ipc.ToTray`` messages (the menu's state, a notification,
stop). Child → parent: ``ipc.TrayCommand``, ``READY`` once, then the menu choices, e.g.
``(OPEN_DIALOG,)``, ``(OPEN_RECENT, path)``, ``(FOCUS, key)``, ``(OPEN_REMOTE, key)``.
The child stops when the parent says so or when the pipe closes (the parent died), so
it never outlives the app.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from cellucid_desktop.desktop.ipc import ToTray, TrayCommand, TraySubmenu

log = logging.getLogger(__name__)

# Top-level menu, in order (None = separator). Tests navigate it by position.
MENU: list[tuple[str, str] | None] = [
    (TrayCommand.SHOW, "Show Cellucid Desktop"),
    (TrayCommand.OPEN_DIALOG, "Open dataset…"),
    (TraySubmenu.RECENT, "Open recent"),
    (TrayCommand.CONNECT, "Connect to remote…"),
    (TraySubmenu.REMOTES, "Recent remotes"),
    (TraySubmenu.WINDOWS, "Windows"),
    (TrayCommand.BROWSER, "Open in browser"),
    (TrayCommand.WEBAPP, "Open in Cellucid web app"),
    None,
    (TrayCommand.SETTINGS, "Settings"),
    (TrayCommand.LOG, "Show log"),
    (TrayCommand.ABOUT, "About Cellucid Desktop"),
    None,
    (TrayCommand.QUIT, "Quit"),
]
# Each submenu: the command its entries send, and what it says when empty.
SUBMENUS = {TraySubmenu.RECENT: (TrayCommand.OPEN_RECENT, "No recent files"),
            TraySubmenu.WINDOWS: (TrayCommand.FOCUS, "No open datasets"),
            TraySubmenu.REMOTES: (TrayCommand.OPEN_REMOTE, "No saved or recent remotes")}


def menu_position(command: str) -> int:
    """1-based position among selectable items (what Down×N reaches in the menu)."""
    items = [entry[0] for entry in MENU if entry is not None]
    return items.index(command) + 1


def _build_menu(pystray: Any, state: dict[str, list[list[str]]],
                send: Callable[..., None]) -> Any:
    item, menu = pystray.MenuItem, pystray.Menu

    def action(*message: str) -> Callable[[], None]:
        return lambda: send(*message)

    def submenu(entries: list[list[str]], command: str, empty: str) -> Any:
        if not entries:
            return menu(item(empty, None, enabled=False))
        return menu(*(item(label, action(command, key)) for key, label in entries))

    items = []
    for entry in MENU:
        if entry is None:
            items.append(menu.SEPARATOR)
        elif entry[0] in SUBMENUS:
            command, empty = SUBMENUS[entry[0]]
            items.append(item(entry[1], submenu(state[entry[0]], command, empty)))
        else:
            items.append(item(entry[1], action(entry[0]),
                              default=entry[0] == TrayCommand.SHOW))
    return menu(*items)


def tray_main(conn: Connection) -> None:
    """Child process entry: run the icon on this process's main thread until told to stop."""
    from cellucid_desktop.desktop.system import hide_from_dock
    from cellucid_desktop.logs import setup_logging

    setup_logging()
    lock = threading.Lock()
    stopping = threading.Event()

    def send(*message: str) -> None:
        with lock:
            try:
                conn.send(message)
            except OSError:
                pass  # the parent is gone; the listener sees EOF and stops the icon

    try:
        import pystray

        from cellucid_desktop.desktop.icon import tray_image

        hide_from_dock()
        state: dict[str, list[list[str]]] = {name: [] for name in TraySubmenu}
        icon = pystray.Icon("cellucid-desktop", tray_image(), "Cellucid Desktop",
                            menu=_build_menu(pystray, state, send))

        def listen(icon: Any) -> None:
            icon.visible = True
            send(TrayCommand.READY)
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                if message[0] == ToTray.STOP:
                    break
                if message[0] == ToTray.MENU:
                    state.update(message[1])
                    icon.menu = _build_menu(pystray, state, send)
                    icon.update_menu()
                elif message[0] == ToTray.NOTIFY:
                    _notify(icon, message[1])
            stopping.set()
            icon.stop()

        icon.run(setup=listen)
    except Exception as exc:  # noqa: BLE001 - GLib.Error when no notification daemon runs
        if stopping.is_set():  # pystray's clean-up talks to that daemon at stop
            log.info("Tray clean-up: %s", exc)
        else:
            log.exception("The tray icon stopped with an error")
    finally:
        conn.close()
        # pystray's setup thread is not a daemon and waits forever if the icon failed to
        # start, which would keep this process alive: leave without waiting for it.
        logging.shutdown()
        os._exit(0)


def _notify(icon: Any, text: str) -> None:
    try:
        icon.notify(text, "Cellucid Desktop")
    except Exception:  # noqa: BLE001 - no notification daemon: the hint is in the log too
        log.info("Tray notification not shown: %s", text)


class TrayProcess:
    """Parent side: start the child, forward its menu choices to ``on_command``."""

    def __init__(self, on_command: Callable[..., None]) -> None:
        self._on_command = on_command
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self.process: multiprocessing.process.BaseProcess | None = None
        self.ready = threading.Event()

    def start(self) -> TrayProcess:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=tray_main, args=(child,), name="cellucid-tray",
                                   daemon=True)
        self.process.start()
        child.close()
        self._conn = parent
        threading.Thread(target=self._listen, name="tray-listener", daemon=True).start()
        return self

    @property
    def alive(self) -> bool:
        return self._conn is not None and self.process is not None and self.process.is_alive()

    def _listen(self) -> None:
        conn = self._conn
        while conn is not None:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == TrayCommand.READY:
                self.ready.set()
                continue
            log.info("Tray: %s", message[0])
            threading.Thread(target=self._on_command, args=message, daemon=True).start()
        log.info("The tray process ended")
        self._conn = None

    def send(self, *message: Any) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                self._conn.send(message)
            except OSError:
                self._conn = None

    def update_menu(self, recent: list[list[str]], windows: list[list[str]],
                    remotes: list[list[str]]) -> None:
        self.send(ToTray.MENU, {TraySubmenu.RECENT: recent, TraySubmenu.WINDOWS: windows,
                                TraySubmenu.REMOTES: remotes})

    def notify(self, text: str) -> None:
        self.send(ToTray.NOTIFY, text)

    def stop(self, timeout: float = 8.0) -> None:
        """Ask the child to stop, wait, and kill it if it hangs."""
        self.send(ToTray.STOP)
        if self.process is None:
            return
        self.process.join(timeout)
        if self.process.is_alive():
            log.warning("The tray process did not stop; killing it")
            self.process.kill()
            self.process.join(2)
