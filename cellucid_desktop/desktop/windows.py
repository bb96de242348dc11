"""The one owner of the app's pywebview windows.

Every window is known by a key (``desktop/ipc.py``: a page name, ``viewer:<id>``,
``webapp:<id>``, ``remote:<id>``). Whoever opens a window does it here; whoever needs to
know that one closed (the servers it owned, the dataset it showed, the tray menu)
listens here. Quit destroys them all.

Threading (docs/desktop-stack.md §3): creating windows, dialogs and JavaScript calls
block until the GUI thread has done them, so every method here is called from worker
threads (bridge calls, control routes, tray commands), never from the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cellucid_desktop.desktop.ipc import VIEWER, Page
from cellucid_desktop.desktop.js_waits import release_all_at_exit, release_pending

if TYPE_CHECKING:
    import webview

log = logging.getLogger(__name__)

PAGE_SIZES = {Page.HOME: (920, 660), Page.SETTINGS: (560, 660), Page.CONNECT: (700, 820),
              Page.ABOUT: (480, 360), Page.WEBAPP: (460, 220), Page.PROMPT: (520, 360)}
PAGE_TITLES = {Page.HOME: "Cellucid Desktop", Page.SETTINGS: "Settings — Cellucid Desktop",
               Page.CONNECT: "Connect to remote — Cellucid Desktop",
               Page.ABOUT: "About Cellucid Desktop",
               Page.WEBAPP: "Getting the Cellucid web app — Cellucid Desktop",
               Page.PROMPT: "Sign in — Cellucid Desktop"}
PAGE_MIN_SIZE = (420, 300)
VIEWER_SIZE = (1280, 820)
VIEWER_MIN_SIZE = (480, 360)
SCREEN_SHARE = 0.92  # a new window takes at most this share of the screen's free area
REFRESH_JS = "window.cellucidRefresh && window.cellucidRefresh()"

CloseListener = Callable[[str], None]


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
    """The primary screen's free area (without panels and task bars), or None. Read on
    the GUI thread, before the first window."""
    screen = qt_app.primaryScreen() if qt_app is not None else None
    if screen is None:
        return None
    area = screen.availableGeometry()
    return (area.width(), area.height()) if area.width() > 0 and area.height() > 0 else None


class Windows:
    """Open, find, focus, hide and close windows by key; tell listeners when one closes.

    ``page_url(path)`` gives the app server's address of a page (with its token);
    ``page_api()`` the JS bridge our pages get."""

    def __init__(self, page_url: Callable[[str], str], page_api: Callable[[], object]) -> None:
        self._page_url = page_url
        self._page_api = page_api
        self._windows: dict[str, webview.Window] = {}
        self._every_window: weakref.WeakSet[webview.Window] = weakref.WeakSet()
        self._loaded_at: dict[str, float] = {}
        self._hidden: set[str] = set()
        self._latest: dict[str, str] = {}  # key prefix -> last opened or focused key
        self._close_listeners: list[CloseListener] = []
        self._lock = threading.RLock()
        self.screen: tuple[int, int] | None = None  # free screen area (available_screen)

    # ----- opening ----------------------------------------------------------------------

    def create_page(self, page: Page, hidden: bool = False) -> webview.Window:
        """A new window on one of our pages (see :meth:`show_page` to reuse one)."""
        import webview

        width, height = fit_window(PAGE_SIZES[page], self.screen, PAGE_MIN_SIZE)
        window = webview.create_window(
            PAGE_TITLES[page], self._page_url(f"/_desktop/pages/{page}.html"),
            js_api=self._page_api(), width=width, height=height, hidden=hidden,
            min_size=PAGE_MIN_SIZE, background_color="#14171f")
        self._track(page, window)
        if hidden:
            self._hidden.add(page)
        return window

    def show_page(self, page: Page) -> None:
        """Focus the page's window, opening it first if needed."""
        with self._lock:
            if page not in self._windows:
                self.create_page(page)
                return
        self.focus(page)

    def open_viewer(self, key: str, title: str, url: str,
                    js_api: object | None = None) -> webview.Window:
        """A tracked viewer-sized window; remote content gets no ``js_api``."""
        import webview

        width, height = fit_window(VIEWER_SIZE, self.screen, VIEWER_MIN_SIZE)
        window = webview.create_window(
            title, url, js_api=js_api, width=width, height=height, min_size=VIEWER_MIN_SIZE,
            background_color="#101318")
        self._track(key, window)
        return window

    def _track(self, key: str, window: webview.Window) -> None:
        with self._lock:
            self._windows[key] = window
            self._every_window.add(window)
            self._note_latest(key)
        window.events.loaded += lambda: self._loaded_at.setdefault(key, time.time())
        window.events.closed += lambda: release_pending(window)
        window.events.closed += lambda: self._forget(key, window)

    def _forget(self, key: str, window: webview.Window) -> None:
        with self._lock:
            if self._windows.get(key) is not window:
                return  # a newer window took the key
            del self._windows[key]
            self._loaded_at.pop(key, None)
            self._hidden.discard(key)
            listeners = list(self._close_listeners)
        for listener in listeners:
            try:
                listener(key)
            except Exception:  # noqa: BLE001 - one listener's bug must not skip the others
                log.exception("After closing %s", key)

    def on_close(self, listener: CloseListener) -> None:
        """``listener(key)`` runs (on a GUI event thread: keep it short) after a window
        closed, whoever closed it."""
        with self._lock:
            self._close_listeners.append(listener)

    # ----- finding and acting on windows ----------------------------------------------

    def get(self, key: str) -> webview.Window | None:
        with self._lock:
            return self._windows.get(key)

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self, prefix: str = "") -> list[str]:
        with self._lock:
            return [key for key in self._windows if key.startswith(prefix)]

    def title(self, key: str) -> str:
        window = self.get(key)
        return window.title if window is not None else ""

    def first_url(self, key: str) -> str | None:
        """The address a window was opened on (with its token), e.g. for a browser."""
        window = self.get(key)
        return window.original_url if window is not None else None

    def latest(self, prefix: str) -> str | None:
        """The key with ``prefix`` opened or focused last, if its window is still open."""
        with self._lock:
            key = self._latest.get(prefix)
            return key if key in self._windows else None

    def _note_latest(self, key: str) -> None:
        if key.startswith(VIEWER):
            self._latest[VIEWER] = key

    def loaded(self, key: str) -> bool:
        with self._lock:
            return key in self._loaded_at

    def focus(self, key: str) -> bool:
        """Show, raise and activate a window; False if there is none."""
        window = self.get(key)
        if window is None:
            return False
        window.show()
        window.restore()  # raises and activates the window (Qt)
        with self._lock:
            self._hidden.discard(key)
            self._note_latest(key)
        return True

    def hide(self, key: str) -> None:
        window = self.get(key)
        if window is not None:
            window.hide()
            with self._lock:
                self._hidden.add(key)

    def close(self, key: str) -> None:
        window = self.get(key)
        if window is not None:
            window.destroy()

    def close_all(self) -> None:
        """Quit: destroy every window (``webview.start()`` returns after the last)."""
        with self._lock:
            windows = list(self._windows.values())
        for window in windows:
            window.destroy()

    def release_at_exit(self) -> None:
        """After the GUI loop ended: wake JavaScript waits no window will answer."""
        release_all_at_exit(self._every_window)

    def run_js(self, key: str, script: str) -> None:
        """Run ``script`` in the window once its page has loaded (else nothing: a page
        that loads later reads its state itself)."""
        window = self.get(key)
        if window is not None and self.loaded(key):
            window.run_js(script)

    def refresh(self, key: str) -> None:
        """Ask one of our pages to re-read its state."""
        self.run_js(key, REFRESH_JS)

    def file_dialog(self, key: str, kind: Any, **options: Any) -> Any:
        """A native file dialog over window ``key``; None if that window is gone."""
        window = self.get(key)
        return window.create_file_dialog(kind, **options) if window is not None else None

    # ----- test surface -----------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Every window: key, title, the address it shows now (after the token redirect,
        once loaded), hidden, load time."""
        with self._lock:
            items = list(self._windows.items())
            loaded = dict(self._loaded_at)
            hidden = set(self._hidden)
        return [{"key": key, "title": w.title,
                 "url": (w.get_current_url() if key in loaded else None)
                 or w.real_url or w.original_url,
                 "hidden": key in hidden, "loaded_at": loaded.get(key)}
                for key, w in items]

    def evaluate(self, key: str, script: str) -> Any:
        window = self.get(key)
        if window is None:
            raise LookupError(f"no window {key!r}")
        return window.evaluate_js(script)
