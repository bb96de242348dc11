"""The desktop app: one process owning the GUI thread, the server in a thread, the tray
in a child process.

Threading rules (docs/desktop-stack.md §3): ``webview.start()`` runs once, on the main
thread. Everything that blocks on pywebview (``create_window``, ``create_file_dialog``,
``evaluate_js``) runs on worker threads: JS-bridge calls, control routes (waitress
threads), tray commands (one thread each) and the start-up hook. The home window is
never destroyed before Quit, only hidden, so ``webview.start()`` keeps running while
the tray lives.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
import time
import weakref
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellucid_desktop import __version__, paths
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.desktop import instance
from cellucid_desktop.desktop.bridge import PageApi, ViewerApi
from cellucid_desktop.desktop.connect.controller import RemoteConnections
from cellucid_desktop.desktop.control import SELF_GUARDED, desktop_routes
from cellucid_desktop.desktop.fileopen import install_file_open_handler
from cellucid_desktop.desktop.js_waits import release_all_at_exit, release_pending
from cellucid_desktop.desktop.system import open_with_system
from cellucid_desktop.desktop.tray import TrayProcess
from cellucid_desktop.desktop.webapp_open import WebAppOpener
from cellucid_desktop.logs import log_file
from cellucid_desktop.server.registry import Dataset, DatasetRegistry
from cellucid_desktop.server.runner import PortInUseError, ServerThread
from cellucid_desktop.settings import UserState

if TYPE_CHECKING:
    import webview

    from cellucid_desktop.server.webapp_cache import WebAppCache

log = logging.getLogger(__name__)

# The file dialog's filters (pywebview's format: words and spaces, then the patterns).
# A Zarr store folder is opened with the folder dialog instead (open_folder_dialog).
FILE_TYPES = ("Single cell datasets (*.h5ad;*.h5mu;*.loom;*.zarr.zip;*.zip)",
              "AnnData (*.h5ad)", "MuData (*.h5mu)", "Loom (*.loom)",
              "Zipped Zarr stores (*.zarr.zip;*.zip)", "All files (*.*)")
# Cache sub-folders the Settings window can clear (under paths.cache_dir()).
CACHE_FOLDERS = {"genes": "gene-index", "webapp": "webapp", "demo": "demo"}
PAGE_SIZES = {"home": (920, 660), "settings": (560, 660), "connect": (640, 760),
              "about": (480, 360), "webapp": (460, 220)}
PAGE_TITLES = {"home": "Cellucid Desktop", "settings": "Settings — Cellucid Desktop",
               "connect": "Connect to remote — Cellucid Desktop",
               "about": "About Cellucid Desktop",
               "webapp": "Getting the Cellucid web app — Cellucid Desktop"}
QUIT_DEADLINE = 20.0  # seconds Quit may take before the process ends regardless
VIEWER_SIZE = (1280, 820)
VIEWER_MIN_SIZE = (480, 360)
SCREEN_SHARE = 0.92  # a new window takes at most this share of the screen's free area


def fit_window(wanted: tuple[int, int], available: tuple[int, int] | None,
               minimum: tuple[int, int]) -> tuple[int, int]:
    """A window size no larger than the screen's free area (a 1280x820 viewer on an
    800-pixel laptop screen had its bottom off screen), and no smaller than the minimum
    unless the screen itself is smaller."""
    if available is None:
        return wanted
    return tuple(max(min(low, free), min(want, int(free * SCREEN_SHARE)))  # type: ignore[return-value]
                 for want, free, low in zip(wanted, available, minimum))


def available_screen(qt_app: Any) -> tuple[int, int] | None:
    """The primary screen's free area (without panels and task bars), or None."""
    screen = qt_app.primaryScreen() if qt_app is not None else None
    if screen is None:
        return None
    area = screen.availableGeometry()
    return (area.width(), area.height()) if area.width() > 0 and area.height() > 0 else None


class DesktopApp:
    """State and actions of the running app (the JS bridges, tray and routes call these)."""

    def __init__(self, test_token: str | None = None) -> None:
        self.user = UserState()
        self.registry = DatasetRegistry()
        self.secret = instance.new_secret()
        self.test_token = test_token
        self.server: ServerThread | None = None
        self.tray: TrayProcess | None = None
        self.me: instance.Instance | None = None
        self._windows: dict[str, webview.Window] = {}
        self._every_window: weakref.WeakSet[webview.Window] = weakref.WeakSet()
        self._loaded_at: dict[str, float] = {}
        self._hidden: set[str] = set()
        self._lock = threading.RLock()
        self._notice_ids = itertools.count(1)
        self.notices: list[dict[str, Any]] = []
        self._last_viewer: str | None = None
        self._viewer_urls: dict[str, str] = {}
        self._webapp_servers: dict[str, ServerThread] = {}  # viewer key -> its web-app origin
        self._screen: tuple[int, int] | None = None  # free screen area, read on the GUI thread
        self._modality_names: dict[tuple[str, str], list[str]] = {}  # recent MuData files
        self._quitting = threading.Event()
        self.remote = RemoteConnections(self)  # connect dialog's sessions (desktop/connect)
        self.webapp = WebAppOpener(self)  # "Open in Cellucid web app" (desktop/webapp_open.py)
        for message in self.user.messages:
            self.notify(message, "warning")

    # ----- start and stop -------------------------------------------------------------

    def start_server(self) -> ServerThread:
        """Bind the configured port, or any free one (with a message) if it is busy."""
        options = {"blueprints": [desktop_routes(self, self.secret, self.test_token)],
                   "self_guarded": SELF_GUARDED}
        port = self.user.settings.port
        try:
            self.server = ServerThread(self.registry, port=port, **options).start()
        except PortInUseError:
            self.server = ServerThread(self.registry, port=0, **options).start()
            self.notify(f"Port {port} is in use, so Cellucid Desktop uses port "
                        f"{self.server.port} this time; choose another port in Settings.",
                        "warning")
        return self.server

    def run(self, files: list[str], demo: bool = False) -> int:
        """Start everything and block until Quit. Returns the exit code; raises
        instance.AlreadyRunning if another launch claimed the lock first."""
        import webview

        server = self.start_server()
        self.me = instance.claim(server.port, self.secret)
        if self.me is None:  # another launch won the race: the CLI hands it our files
            server.stop()
            raise instance.AlreadyRunning
        try:
            self._qt_app = install_file_open_handler(self.open_paths)  # Qt app, kept alive
            self._screen = available_screen(self._qt_app)
            self._create_page("home", hidden=False)
            print(f"Cellucid Desktop is running at {server.url}", flush=True)
            webview.start(self._after_start, (files, demo), gui="qt", private_mode=True)
        finally:
            self._shutdown()
            release_all_at_exit(self._every_window)  # else Python's exit may wait forever
        return 0

    def _after_start(self, files: list[str], demo: bool) -> None:
        """Runs in a pywebview worker thread once the GUI loop is up."""
        self.tray = TrayProcess(self.on_tray_command).start()
        threading.Thread(target=self._menu_when_tray_ready, daemon=True).start()
        if files or demo:
            self.open_paths(files, demo=demo)

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
        with self._lock:
            windows = list(self._windows.values())
        for window in windows:
            window.destroy()

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
        for key in list(self._webapp_servers):
            self._webapp_servers.pop(key).stop()
        self.remote.close_all()
        if self.server is not None:
            self.server.stop()
        if self.me is not None:
            instance.release(self.me)
        log.info("Stopped")

    # ----- windows --------------------------------------------------------------------

    def _create_page(self, page: str, hidden: bool = False) -> webview.Window:
        import webview

        assert self.server is not None
        width, height = fit_window(PAGE_SIZES[page], self._screen, (420, 320))
        window = webview.create_window(
            PAGE_TITLES[page], self.server.url_with_token(f"/_desktop/pages/{page}.html"),
            js_api=PageApi(self), width=width, height=height, hidden=hidden,
            min_size=(420, 320), background_color="#14171f")
        self.track_window(page, window)
        if page == "home":
            window.events.closing += self._on_home_closing
            window.events.loaded += self._attach_drop_zone
        return window

    def track_window(self, key: str, window: webview.Window) -> None:
        """Keep ``window`` under ``key`` (test surface, Quit, tray) until it closes."""
        with self._lock:
            self._windows[key] = window
            self._every_window.add(window)
        window.events.loaded += lambda: self._loaded_at.setdefault(key, time.time())
        window.events.closed += lambda: release_pending(window)
        window.events.closed += lambda: self._forget(key)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
            self._loaded_at.pop(key, None)
            self._viewer_urls.pop(key, None)
            webapp = self._webapp_servers.pop(key, None)
        if webapp is not None:
            webapp.stop()
        if key.startswith("viewer:"):
            dataset_id = key.removeprefix("viewer:")
            self.registry.remove(dataset_id)
            log.info("Closed %s", dataset_id)
            self.update_tray_menu()
            self.refresh_home()
        elif key.startswith("webapp:"):
            self.update_tray_menu()

    def window(self, key: str) -> webview.Window | None:
        with self._lock:
            return self._windows.get(key)

    def focus(self, key: str) -> bool:
        window = self.window(key)
        if window is None:
            return False
        window.show()
        window.restore()  # raises and activates the window (Qt)
        self._hidden.discard(key)
        if key.startswith("viewer:"):
            self._last_viewer = key
        return True

    def show_home(self) -> None:
        self.focus("home")
        self.refresh_home()

    def _show_page(self, page: str) -> None:
        with self._lock:
            if page not in self._windows:
                self._create_page(page)
                return
        self.focus(page)

    def show_settings(self) -> None:
        self._show_page("settings")

    def show_about(self) -> None:
        self._show_page("about")

    def open_connect_dialog(self) -> None:
        """Hook for the remote-connection dialog (docs/desktop.md, "Remote connections")."""
        self._show_page("connect")

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
        home = self.window("home")
        if home is not None:
            home.hide()
            self._hidden.add("home")
        if not self.user.settings.tray_hint_shown and self.tray is not None:
            self.tray.send("notify", "Cellucid Desktop is still running: open it again, "
                                     "or quit it, from the tray icon.")
            self.user.update_settings({"tray_hint_shown": True})

    def _attach_drop_zone(self) -> None:
        """Dropped files' full paths come only through pywebview's DOM events."""
        from webview.dom import DOMEventHandler

        home = self.window("home")
        zone = home.dom.get_element("#drop") if home is not None else None
        if zone is not None:
            zone.on("drop", DOMEventHandler(self._on_drop, prevent_default=True,
                                            stop_propagation=True))

    def _on_drop(self, event: dict[str, Any]) -> None:
        files = event.get("dataTransfer", {}).get("files", [])
        dropped = [f["pywebviewFullPath"] for f in files if f.get("pywebviewFullPath")]
        if dropped:
            self.open_paths(dropped)

    # ----- datasets -------------------------------------------------------------------

    def open_paths(self, files: list[str], demo: bool = False,
                   modality: str | None = None) -> list[dict[str, Any]]:
        """Register each file or store and show its viewer; errors go to the home window.
        ``modality`` picks a MuData modality (default: the expression one)."""
        results = [self._open_one(Path(f), modality=modality) for f in files]
        if demo:
            from cellucid_desktop.data.demo import demo_path

            results.append(self._open_one(demo_path(), remember=False))
        self.refresh_home()
        return results

    def _open_one(self, path: Path, remember: bool = True,
                  modality: str | None = None) -> dict[str, Any]:
        try:
            dataset = self.registry.add(path, modality=modality)
        except DatasetError as exc:
            log.warning("Could not open %s: %s", path, exc)
            self.notify(str(exc), "error")
            self.show_home()
            return {"path": str(path), "ok": False, "error": str(exc)}
        if remember:
            self.user.add_recent(dataset.source.local_path or path)
        self.show_viewer(dataset)
        return {"path": str(path), "ok": True, "id": dataset.id, "name": dataset.name}

    def webapp_cache(self) -> WebAppCache:
        """The web-app cache for the source chosen in Settings."""
        from cellucid_desktop.server.webapp_cache import WebAppCache

        return WebAppCache(source_url=self.user.settings.webapp_source)

    def start_webapp(self, key: str, dataset: Dataset) -> str:
        """Serve the cached web app for ``dataset`` on an origin of its own, owned by the
        window ``key`` (stopped when it closes); its URL. Raises WebAppError."""
        from cellucid_desktop.server.webapp_assets import start_webapp_server, webapp_viewer_url

        webapp = start_webapp_server(self.registry, self.webapp_cache(), dataset_id=dataset.id)
        with self._lock:
            self._webapp_servers[key] = webapp
        return webapp_viewer_url(webapp)

    def _viewer_url(self, key: str, dataset: Dataset) -> str:
        """The built-in viewer on our server, or the official web app on an origin of its
        own (server/webapp_assets.py) when chosen in Settings and downloaded."""
        assert self.server is not None
        if self.user.settings.default_viewer == "webapp":
            from cellucid_desktop.webapp_source import WebAppError

            try:
                return self.start_webapp(key, dataset)
            except WebAppError as exc:
                self.notify(f"{exc} {dataset.name} is shown in the built-in viewer.", "warning")
        return self.server.url_with_token(f"/?dataset={dataset.id}")

    def create_viewer_window(self, key: str, title: str, url: str,
                             bridge: bool = True) -> webview.Window:
        """A tracked viewer-sized window; ``bridge=False`` (remote content) gets no JS API."""
        import webview

        width, height = fit_window(VIEWER_SIZE, self._screen, VIEWER_MIN_SIZE)
        window = webview.create_window(
            title, url, js_api=ViewerApi(self, key) if bridge else None,
            width=width, height=height, min_size=VIEWER_MIN_SIZE, background_color="#101318")
        self.track_window(key, window)
        return window

    def show_viewer(self, dataset: Dataset) -> None:
        """Open a window on the dataset, or focus the one already showing it."""
        key = f"viewer:{dataset.id}"
        with self._lock:
            exists = key in self._windows
            if not exists:
                url = self._viewer_urls[key] = self._viewer_url(key, dataset)
                self.create_viewer_window(key, dataset.name, url)
                log.info("Opened %s (%s)", dataset.id, dataset.source.label)
        self._last_viewer = key
        if exists:
            self.focus(key)
        self.update_tray_menu()

    def show_webapp_window(self, key: str, dataset: Dataset, url: str) -> None:
        """The web app (already served at ``url`` for ``key``) in a window of its own."""
        with self._lock:
            self._viewer_urls[key] = url
            self.create_viewer_window(key, f"{dataset.name} — Cellucid web app", url)
        log.info("Opened %s in the web app", dataset.id)
        self.update_tray_menu()

    def current_dataset(self) -> Dataset | None:
        """The dataset of the last focused or opened built-in viewer, if still open."""
        key = self._last_viewer or ""
        return self.registry.get(key.removeprefix("viewer:")) if self.window(key) else None

    def show_webapp_progress(self) -> None:
        self._show_page("webapp")

    def close_window(self, key: str) -> None:
        window = self.window(key)
        if window is not None:
            window.destroy()

    def choose_and_open(self, folder: bool = False) -> list[dict[str, Any]]:
        """Native multi-select file dialog, filtered to dataset files, then open the
        choices; ``folder`` asks for a Zarr store folder instead."""
        import webview

        home = self.window("home")
        if home is None:
            return []
        if folder:
            chosen = home.create_file_dialog(webview.FileDialog.FOLDER)
        else:
            chosen = home.create_file_dialog(webview.FileDialog.OPEN, allow_multiple=True,
                                             file_types=FILE_TYPES)
        return self.open_paths(list(chosen or []))

    def open_dialog(self) -> None:
        """The file dialog without blocking the caller (tray, control route)."""
        self.focus("home")
        threading.Thread(target=self.choose_and_open, daemon=True).start()

    def ask_save_path(self, key: str, suggested: str) -> Path | None:
        import webview

        window = self.window(key) or self.window("home")
        if window is None:
            return None
        chosen = window.create_file_dialog(webview.FileDialog.SAVE, save_filename=suggested)
        if not chosen:
            return None
        return Path(chosen if isinstance(chosen, str) else chosen[0])

    # ----- home page state ------------------------------------------------------------

    def notify(self, text: str, level: str = "info") -> None:
        with self._lock:
            self.notices.append({"id": next(self._notice_ids), "level": level, "text": text})
            del self.notices[:-5]  # the last few are enough

    def dismiss_notice(self, notice_id: int) -> None:
        with self._lock:
            self.notices = [n for n in self.notices if n["id"] != notice_id]

    def page_state(self) -> dict[str, Any]:
        with self._lock:
            notices = list(self.notices)
        return {
            "version": __version__,
            "recent": [{**e, "modalities": self._modalities(e["path"])}
                       for e in self.user.recent_entries()],
            "open": [{"id": d.id, "name": d.name, "modality": d.source.modality,
                      "modalities": list(d.source.modalities)} for d in self.registry.all()],
            "notices": notices,
            "settings": self._settings_view(),
            "port": self.server.port if self.server else None,
            "log_file": str(log_file()),
            "config_dir": str(paths.config_dir()),
        }

    def _modalities(self, path: str) -> list[str]:
        """A recent MuData file's modalities (read once per file version), else []."""
        if not path.lower().endswith(".h5mu"):
            return []
        from cellucid_desktop.data.local_source import open_local
        from cellucid_desktop.data.reader import file_identity

        try:
            key = (path, file_identity(path))
            if key not in self._modality_names:
                self._modality_names[key] = list(open_local(path).modalities)
            return self._modality_names[key]
        except (OSError, DatasetError):
            return []

    def open_modality(self, dataset_id: str, modality: str) -> list[dict[str, Any]]:
        """Another modality of an open MuData dataset, in a viewer of its own."""
        dataset = self.registry.get(dataset_id)
        if dataset is None or dataset.source.local_path is None:
            return []
        return self.open_paths([str(dataset.source.local_path)], modality=modality)

    def _settings_view(self) -> dict[str, Any]:
        """The settings the pages show and edit."""
        settings = self.user.settings
        return {"default_viewer": settings.default_viewer,
                "close_to_tray": settings.close_to_tray, "port": settings.port,
                "theme": settings.theme, "webapp_source": settings.webapp_source}

    def refresh_home(self) -> None:
        """Ask the home page to re-read its state (no-op until it has loaded)."""
        home = self.window("home")
        if home is not None and "home" in self._loaded_at:
            home.run_js("window.cellucidRefresh && window.cellucidRefresh()")

    def recent_changed(self) -> None:
        self.update_tray_menu()
        self.refresh_home()

    def save_settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply and save; an unusable web-app source is refused with ``error``."""
        from cellucid_desktop.webapp_source import SourceURLError, validate_source_url

        if "webapp_source" in changes:
            try:
                validate_source_url(changes["webapp_source"])
            except SourceURLError as exc:
                return {**self._settings_view(), "error": str(exc)}
        self.user.update_settings(changes)
        self.refresh_home()
        return self._settings_view()

    def clear_cache(self, kind: str) -> str:
        folder = CACHE_FOLDERS.get(kind)
        if folder is None:
            return f"Unknown cache {kind!r}."
        target = paths.cache_dir() / folder
        try:
            if kind == "webapp":  # the web-app cache has its own lock against a running fetch
                from cellucid_desktop.server.webapp_cache import WebAppCache

                WebAppCache(target).clear()
            else:
                shutil.rmtree(target)
        except FileNotFoundError:
            return "Already empty."
        except OSError as exc:
            return f"Could not clear {target}: {exc.strerror or exc}."
        return "Cleared."

    def show_log(self) -> None:
        open_with_system(log_file())

    def open_in_browser(self) -> None:
        """The current (last focused or opened) dataset's viewer in the default browser."""
        url = self._viewer_urls.get(self._last_viewer or "")
        if url is None:
            self.notify("Open a dataset first, then choose Open in browser.", "info")
            self.show_home()
            return
        webbrowser.open(url)

    # ----- tray -----------------------------------------------------------------------

    def update_tray_menu(self) -> None:
        if self.tray is None:
            return
        recent = [[e["path"], e["name"] + (" (missing)" if e["missing"] else "")]
                  for e in self.user.recent_entries()]
        windows = [[f"viewer:{d.id}", d.name] for d in self.registry.all()]
        with self._lock:
            windows += [[key, w.title] for key, w in self._windows.items()
                        if key.startswith("webapp:")]
        windows += self.remote.tray_windows()
        self.tray.update_menu(recent, windows, self.remote.tray_remotes())

    def on_tray_command(self, command: str, argument: str = "") -> None:
        actions = {
            "show": self.show_home, "open_dialog": self.open_dialog,
            "connect": self.open_connect_dialog, "browser": self.open_in_browser,
            "webapp": self.webapp.open_from_tray,
            "settings": self.show_settings, "log": self.show_log, "about": self.show_about,
            "quit": self.quit,
        }
        if command == "open_recent":
            self.open_paths([argument])
        elif command == "focus":
            self.focus(argument)
        elif command == "open_remote":
            self.remote.start_remembered(argument)
        elif command in actions:
            actions[command]()

    # ----- test surface (CELLUCID_DESKTOP_TEST_TOKEN) ---------------------------------

    def test_windows(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._windows.items())
        # the address the window shows now (after the token redirect), once it loaded
        return [{"key": key, "title": w.title,
                 "url": (w.get_current_url() if key in self._loaded_at else None)
                 or w.real_url or w.original_url,
                 "hidden": key in self._hidden, "loaded_at": self._loaded_at.get(key)}
                for key, w in items]

    def test_eval(self, key: str, script: str) -> Any:
        window = self.window(key)
        if window is None:
            raise LookupError(f"no window {key!r}")
        return window.evaluate_js(script)

