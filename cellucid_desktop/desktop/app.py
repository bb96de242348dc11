"""The desktop app: one process owning the GUI thread, the server in a thread, the tray
in a child process.

``DesktopApp`` only assembles the parts and runs them; each job has one owner that the
helpers receive (docs/desktop.md, "How it is built"):

* ``Windows`` (windows.py): every window, by key; who listens when one closes;
* ``Notices`` (notices.py): the home window's banners;
* ``Servers`` (servers.py): the app's server, the web app's origins, remote connections;
* ``Datasets`` (datasets.py), ``WebAppOpener``, ``Preferences``, ``RemoteConnections``
  (connect/), ``PromptWindow`` + ``SignIn``: the features, each a module of its own with
  its part of the JS bridge (bridge.py);
* names crossing a boundary (tray pipe, control routes, bridge, test surface): ipc.py.

Threading rules (docs/desktop-stack.md §3): ``webview.start()`` runs once, on the main
thread. Everything that blocks on pywebview (``create_window``, ``create_file_dialog``,
``evaluate_js``) runs on worker threads: JS-bridge calls, control routes (waitress
threads), tray commands (one thread each), the prompt broker's thread and the start-up
hook. The home window is never destroyed before Quit, only hidden, so ``webview.start()``
keeps running while the tray lives.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import webbrowser
from typing import Any

from cellucid_desktop import __version__, paths
from cellucid_desktop.desktop import instance
from cellucid_desktop.desktop.bridge import PageApi, ViewerApi
from cellucid_desktop.desktop.connect.connections import RemoteConnections
from cellucid_desktop.desktop.connect.files import RemoteFiles
from cellucid_desktop.desktop.connect.sessions import Sessions
from cellucid_desktop.desktop.control import SELF_GUARDED, desktop_routes
from cellucid_desktop.desktop.datasets import Datasets
from cellucid_desktop.desktop.fileopen import install_file_open_handler
from cellucid_desktop.desktop.gui_gc import GuiThreadCollector
from cellucid_desktop.desktop.ipc import REMOTE_FILE, VIEWER, WEBAPP, Page, TrayCommand
from cellucid_desktop.desktop.notices import Notices
from cellucid_desktop.desktop.preferences import Preferences
from cellucid_desktop.desktop.prompt_window import PromptWindow
from cellucid_desktop.desktop.servers import Servers
from cellucid_desktop.desktop.sign_in import SignIn
from cellucid_desktop.desktop.tray import TrayProcess
from cellucid_desktop.desktop.webapp_open import WebAppOpener
from cellucid_desktop.desktop.windows import Windows, available_screen
from cellucid_desktop.logs import log_file
from cellucid_desktop.remote.connections import ConnectionStore
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.settings import UserState

log = logging.getLogger(__name__)

QUIT_DEADLINE = 20.0  # seconds Quit may take before the process ends regardless


class DesktopApp:
    """The running app: its owners, start-up, Quit, the tray's and the control routes'
    commands (``control.Controller``)."""

    def __init__(self, test_token: str | None = None) -> None:
        self.user = UserState()
        self.registry = DatasetRegistry()
        self.secret = instance.new_secret()
        self.test_token = test_token
        self.tray: TrayProcess | None = None
        self.me: instance.Instance | None = None
        self._quitting = threading.Event()

        self.servers = Servers(self.registry)
        self.windows = Windows(self.servers.page_url, self._page_api)
        self.windows.on_close(self.servers.stop)  # a window's servers end with it
        self.notices = Notices(self.windows)
        self.preferences = Preferences(self.user, changed=self._refresh_home)
        self.datasets = Datasets(self.registry, self.user, self.windows, self.servers,
                                 self.notices, viewer_api=self._viewer_api,
                                 changed=self.changed)
        self.webapp = WebAppOpener(self.datasets, self.windows, self.servers, self.notices)
        self.prompts = PromptWindow(self.windows)
        self.sign_in = SignIn(self.prompts)
        self.sessions = Sessions(self.windows, self.servers, self.notices,
                                 changed=self.changed)
        store = ConnectionStore()
        masters, viewer = self.sign_in.pool, lambda: self.user.settings.default_viewer
        self.remote = RemoteConnections(self.sessions, store, self.notices, masters=masters,
                                        viewer=viewer, changed=self.changed)
        self.remote_files = RemoteFiles(self.sessions, store, self.notices, masters=masters,
                                        viewer=viewer, changed=self.changed)
        for message in self.user.messages:
            self.notices.notify(message, "warning")

    def _page_api(self) -> PageApi:
        return PageApi(state=self.page_state, datasets=self.datasets, notices=self.notices,
                       windows=self.windows, preferences=self.preferences,
                       webapp=self.webapp, remote=self.remote, files=self.remote_files,
                       sessions=self.sessions, prompts=self.prompts)

    def _viewer_api(self, key: str) -> ViewerApi:
        return ViewerApi(key, self.windows, self.webapp, self.registry)

    # ----- start and stop -------------------------------------------------------------

    def run(self, files: list[str], demo: bool = False) -> int:
        """Start everything and block until Quit. Returns the exit code; raises
        instance.AlreadyRunning if another launch claimed the lock first."""
        import webview

        busy = self.servers.start_app(self.user.settings.port,
                                      [desktop_routes(self, self.secret, self.test_token)],
                                      SELF_GUARDED)
        if busy:
            self.notices.notify(busy, "warning")
        server = self.servers.app
        assert server is not None
        self.me = instance.claim(server.port, self.secret)
        if self.me is None:  # another launch won the race: the CLI hands it our files
            server.stop()
            raise instance.AlreadyRunning
        try:
            self._qt_app = install_file_open_handler(self.datasets.open_paths)  # kept alive
            self._collector = GuiThreadCollector(self._qt_app)  # Qt objects die on its thread
            self.windows.screen = available_screen(self._qt_app)
            home = self.windows.create_page(Page.HOME)
            home.events.closing += self._on_home_closing
            home.events.loaded += self._attach_drop_zone
            print(f"Cellucid Desktop is running at {server.url}", flush=True)
            webview.start(self._after_start, (files, demo), gui="qt", private_mode=True)
        finally:
            self._shutdown()
            self.windows.release_at_exit()  # else Python's exit may wait forever
        return 0

    def _after_start(self, files: list[str], demo: bool) -> None:
        """Runs in a pywebview worker thread once the GUI loop is up."""
        self.tray = TrayProcess(self.on_tray_command).start()
        threading.Thread(target=self._menu_when_tray_ready, daemon=True).start()
        if files or demo:
            self.datasets.open_paths(files, demo=demo)

    def _menu_when_tray_ready(self) -> None:
        if self.tray is not None and self.tray.ready.wait(60):
            self.update_tray_menu()

    def quit(self) -> None:
        """Close every window; ``webview.start()`` then returns and ``_shutdown`` runs."""
        if self._quitting.is_set():
            return
        self._quitting.set()
        log.info("Quitting")
        threading.Thread(target=self._force_exit_after_deadline, daemon=True).start()
        self.windows.close_all()

    def _force_exit_after_deadline(self) -> None:
        """If a window refuses to close, still end: nothing is unsaved (state is written
        on every change), and a stuck GUI must not keep the tray or server alive."""
        time.sleep(QUIT_DEADLINE)
        log.error("Windows did not close within %.0f s; exiting", QUIT_DEADLINE)
        self._shutdown()
        os._exit(0)

    def _shutdown(self) -> None:
        if self.tray is not None:
            self.tray.stop()
        self.servers.stop_all()  # remote connections first: they may stop a remote job
        self.sign_in.close()     # over their master connection
        if self.me is not None:
            instance.release(self.me)
        log.info("Stopped")

    # ----- the home window ------------------------------------------------------------

    def show_home(self) -> None:
        self.windows.focus(Page.HOME)
        self._refresh_home()

    def _refresh_home(self) -> None:
        self.windows.refresh(Page.HOME)

    def _on_home_closing(self) -> bool:
        """Hide instead of close while the tray lives; without a tray, closing quits."""
        if self._quitting.is_set():
            return True
        tray_alive = self.tray is not None and self.tray.alive
        if not (self.user.settings.close_to_tray and tray_alive):
            threading.Thread(target=self.quit, daemon=True).start()
            return True
        threading.Thread(target=self._hide_home, daemon=True).start()
        return False

    def _hide_home(self) -> None:
        self.windows.hide(Page.HOME)
        if not self.user.settings.tray_hint_shown and self.tray is not None:
            self.tray.notify("Cellucid Desktop is still running: open it again, or quit "
                             "it, from the tray icon.")
            self.user.update_settings({"tray_hint_shown": True})

    def _attach_drop_zone(self) -> None:
        """Dropped files' full paths come only through pywebview's DOM events."""
        from webview.dom import DOMEventHandler

        home = self.windows.get(Page.HOME)
        zone = home.dom.get_element("#drop") if home is not None else None
        if zone is not None:
            zone.on("drop", DOMEventHandler(self._on_drop, prevent_default=True,
                                            stop_propagation=True))

    def _on_drop(self, event: dict[str, Any]) -> None:
        files = event.get("dataTransfer", {}).get("files", [])
        dropped = [f["pywebviewFullPath"] for f in files if f.get("pywebviewFullPath")]
        if dropped:
            self.datasets.open_paths(dropped)

    def page_state(self) -> dict[str, Any]:
        """What our pages show (``state()`` on the bridge)."""
        return {
            "version": __version__,
            "recent": self.datasets.recent_entries(),
            "remote_files": self.remote_files.recent(),
            "remote_sessions": self.sessions.sessions(),
            "open": self.datasets.open_entries(),
            "notices": self.notices.current(),
            "settings": self.preferences.view(),
            "port": self.servers.app.port if self.servers.app else None,
            "log_file": str(log_file()),
            "config_dir": str(paths.config_dir()),
        }

    def open_in_browser(self) -> None:
        """The current (last focused or opened) dataset's viewer in the default browser."""
        url = self.windows.first_url(self.windows.latest(VIEWER) or "")
        if url is None:
            self.notices.announce("Open a dataset first, then choose Open in browser.",
                                  "info")
            return
        webbrowser.open(url)

    # ----- tray -----------------------------------------------------------------------

    def changed(self) -> None:
        """What is open, recent or connected changed: the tray menu and home follow."""
        self.update_tray_menu()
        self._refresh_home()

    def update_tray_menu(self) -> None:
        if self.tray is None:
            return
        recent = [[e["path"], e["name"] + (" (missing)" if e["missing"] else "")]
                  for e in self.user.recent_entries()]
        windows = [[f"{VIEWER}{d.id}", d.name] for d in self.registry.all()]
        windows += [[key, self.windows.title(key)] for key in self.windows.keys(WEBAPP)]
        windows += self.sessions.tray_windows()
        self.tray.update_menu(recent, windows, self.remote.tray_remotes())

    def on_tray_command(self, command: str, argument: str = "") -> None:
        actions = {
            TrayCommand.SHOW: self.show_home, TrayCommand.OPEN_DIALOG: self.datasets.open_dialog,
            TrayCommand.CONNECT: lambda: self.windows.show_page(Page.CONNECT),
            TrayCommand.BROWSER: self.open_in_browser,
            TrayCommand.WEBAPP: self.webapp.open_from_tray,
            TrayCommand.SETTINGS: lambda: self.windows.show_page(Page.SETTINGS),
            TrayCommand.LOG: self.preferences.show_log,
            TrayCommand.ABOUT: lambda: self.windows.show_page(Page.ABOUT),
            TrayCommand.QUIT: self.quit,
        }
        with_argument = {
            TrayCommand.OPEN_RECENT: lambda path: self.datasets.open_paths([path]),
            TrayCommand.FOCUS: self.windows.focus,
            TrayCommand.OPEN_REMOTE: self._open_remote,
        }
        if command in with_argument:
            with_argument[command](argument)
        elif command in actions:
            actions[command]()

    def _open_remote(self, key: str) -> None:
        """The tray's Recent remotes menu: a remote file or a remembered connection."""
        if key.startswith(REMOTE_FILE):
            self.remote_files.start_recent(key.removeprefix(REMOTE_FILE))
        else:
            self.remote.start_remembered(key)

    # ----- control routes and test surface (control.Controller) ----------------------

    def open_paths(self, paths: list[str], demo: bool = False) -> list[dict[str, Any]]:
        return self.datasets.open_paths(paths, demo=demo)

    def connect(self, body: dict[str, Any]) -> dict[str, Any]:
        """`cellucid-desktop connect`: start a connection (``form``) or open a remote
        file (``plan``, its prompts in this app's window), or poll one by ``id``."""
        if "id" in body:
            return self.sessions.status(str(body["id"]))
        if "plan" in body:
            from cellucid_desktop.remote.opening import LaunchPlan
            from cellucid_desktop.remote.ssh_command import SpecError

            try:
                plan = LaunchPlan.from_json(dict(body["plan"]))
            except (SpecError, KeyError, TypeError, ValueError) as exc:
                return {"ok": False, "error": f"The plan cannot be used: {exc}"}
            self.windows.focus(Page.HOME)  # the app comes forward: its prompts show there
            return self.remote_files.open_plan(plan)
        return self.remote.start(dict(body.get("form") or {}))

    def test_windows(self) -> list[dict[str, Any]]:
        return self.windows.snapshot()

    def test_eval(self, key: str, script: str) -> Any:
        return self.windows.evaluate(key, script)

    def test_prompts(self) -> list[dict[str, Any]]:
        return self.prompts.asked()
