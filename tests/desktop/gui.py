"""Drive the real desktop app under Xvfb: start it, talk to its test surface, use X tools.

Each test runs the app in its own subprocess (pywebview owns a process's main thread and
``webview.start()`` runs once per process), with the test's isolated XDG folders.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from cellucid_desktop.desktop.tray import menu_position
from tests.helpers import GiveUp, wait_for

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = re.compile(r"Cellucid Desktop is running at (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 60.0


def app_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cellucid_desktop", *args]


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie (a container's PID 1 may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class GoneError(GiveUp):
    """The app process is no longer running."""


class App:
    """One running app process and the calls tests make on it."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.token = env["CELLUCID_DESKTOP_TEST_TOKEN"]
        self.proc = subprocess.Popen(app_command(*args), env=env, cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output: list[str] = []
        self.url = self._read_url()
        self.known_children: set[int] = set()

    def _read_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = READY_LINE.search(line)
            if match:
                os.set_blocking(self.proc.stdout.fileno(), False)
                return match.group(1)
        raise AssertionError("the app did not start:\n" + "".join(self.output))

    def request(self, path: str, body: dict[str, Any] | None = None,
                timeout: float = 60.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json", "X-Cellucid-Test-Token": self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return json.loads(response.read())
        except OSError:
            self.raise_if_gone()
            raise

    def windows(self) -> dict[str, dict[str, Any]]:
        self.known_children |= descendants(self.proc.pid)
        return {w["key"]: w for w in self.request("/__test__/windows")["windows"]}

    def raise_if_gone(self) -> None:
        """A test waiting on an app that died says so, with the app's last output (a
        crash's message is there, not in the waited-for condition)."""
        if self.proc.poll() is None:
            return
        assert self.proc.stdout is not None
        try:
            self.output.append(self.proc.stdout.read() or "")
        except (OSError, ValueError):
            pass
        tail = "".join(self.output)[-6000:]
        raise GoneError(f"the app exited with code {self.proc.returncode}; its last "
                        f"output:\n{tail}")

    def eval(self, key: str, js: str) -> Any:
        return self.request("/__test__/eval", {"key": key, "js": js})["result"]

    def prompts(self) -> list[dict[str, Any]]:
        """The sign-in questions the app showed so far, each with its outcome."""
        return self.request("/__test__/prompts")["prompts"]

    def wait_window(self, key: str, what: str = "", timeout: float = 60.0) -> dict[str, Any]:
        return wait_for(lambda: (self.windows().get(key) or {}).get("loaded_at")
                        and self.windows()[key], timeout, what=what or f"window {key} loaded")

    def wait_home_ready(self) -> None:
        self.wait_window("home")
        wait_for(lambda: self.eval("home", "document.documentElement.dataset.homeState") == "ready",
                 30, what="home page ready")

    def stop(self) -> int:
        """Quit through the app's own route if it still runs, then make sure nothing is left."""
        if self.proc.poll() is None:
            try:
                self.known_children |= descendants(self.proc.pid)
                run_cli(self.env, "quit", timeout=30)
                self.proc.wait(30)
            except (subprocess.TimeoutExpired, AssertionError):
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.known_children:
            if running(pid):
                os.kill(pid, 9)
        return self.proc.returncode


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(app_command(*args), env=env, cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_qt_script(script: str) -> subprocess.CompletedProcess:
    """Python code with Qt in a process of its own, without a display (offscreen)."""
    return subprocess.run([sys.executable, "-c", script], text=True, capture_output=True,
                          timeout=120, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
                               "QT_API": "pyside6", "HOME": str(Path.home())})


def new_token() -> str:
    return secrets.token_hex(16)


# ----- X helpers ---------------------------------------------------------------------

def xdotool(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, text=True, capture_output=True,
                          timeout=30).stdout.strip()


def visible_window(env: dict[str, str], title_regex: str, pid: int | None = None) -> str | None:
    """A mapped window with that title (of process ``pid`` only, if given: the tray icon
    of the tray child has the app's name too)."""
    by_pid = ["--all", "--pid", str(pid)] if pid else []
    found = xdotool(env, "search", "--onlyvisible", *by_pid, "--name", title_regex).split()
    return found[-1] if found else None


def wait_visible(env: dict[str, str], title_regex: str, timeout: float = 30.0,
                 pid: int | None = None) -> str:
    return wait_for(lambda: visible_window(env, title_regex, pid), timeout,
                    what=f"a visible window named {title_regex!r}")


def type_into_dialog(env: dict[str, str], window_id: str, text: str) -> None:
    """Focus a Qt file dialog, replace its file-name field with ``text``, press Return.

    Real (XTEST) key events to the focused window: events sent to a window directly
    (``--window``) are synthetic and left GTK's tray menu unable to take the keyboard
    afterwards."""
    xdotool(env, "windowfocus", "--sync", window_id)
    xdotool(env, "key", "ctrl+a")
    xdotool(env, "type", "--delay", "20", text)
    xdotool(env, "key", "Return")
    # Said here, not later as "no window opened": the keys went elsewhere or the dialog
    # did not take the path.
    try:
        wait_for(lambda: window_id not in mapped_windows(env), 30,
                 what=f"the dialog to close after typing {text!r} and Return")
    except AssertionError as exc:
        focused = xdotool(env, "getwindowfocus", "getwindowname")
        raise AssertionError(f"{exc} (the keyboard focus is on {focused!r})") from None


def screenshot(env: dict[str, str], path: Path) -> Image.Image:
    subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, timeout=30)
    return Image.open(path).convert("RGB")


class _ClientMessage(ctypes.Structure):
    """Xlib's XClientMessageEvent (32-bit data)."""
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


@functools.cache
def _libx11() -> ctypes.CDLL:
    """libX11 with the signatures close_window calls (64-bit pointers and XIDs)."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(_XEvent)]
    x11.XFlush.argtypes = x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x11


def close_window(env: dict[str, str], window_id: str) -> None:
    """What a window manager's close button does: a WM_DELETE_WINDOW client message.

    Sent through libX11, which (like xdotool, Qt and GTK) reaches the display by its
    abstract socket first. python-xlib prefers the display's socket file, and an Xvfb
    started with -displayfd takes no lock file, so an X server of the same number in
    another network namespace (a second suite run beside this one) replaces that file:
    the close then went to that other server and was never seen here."""
    x11 = _libx11()
    conn = x11.XOpenDisplay(env["DISPLAY"].encode())
    if not conn:
        raise AssertionError(f"cannot open display {env['DISPLAY']}")
    try:
        message = _XEvent()
        message.xclient.type = 33  # ClientMessage
        message.xclient.window = int(window_id)
        message.xclient.message_type = x11.XInternAtom(conn, b"WM_PROTOCOLS", 0)
        message.xclient.format = 32
        message.xclient.data[0] = x11.XInternAtom(conn, b"WM_DELETE_WINDOW", 0)
        message.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(conn, int(window_id), 0, 0, ctypes.byref(message))  # NoEventMask
        x11.XFlush(conn)
    finally:
        x11.XCloseDisplay(conn)


def close_until(env: dict[str, str], title_regex: str, done: Callable[[], Any],
                pid: int | None = None, timeout: float = 30.0) -> None:
    """Close a window as a user would, clicking close again if the first click came
    before the window was ready for it (Qt may drop a very early WM_DELETE_WINDOW)."""
    def attempt() -> Any:
        if done():
            return True
        window_id = visible_window(env, title_regex, pid)
        if window_id:
            close_window(env, window_id)
        time.sleep(1.0)
        return done()

    wait_for(attempt, timeout, interval=0, what=f"window {title_regex!r} closed")


# ----- the tray icon on trayer -------------------------------------------------------

def tray_icons(env: dict[str, str], tray_window: str) -> list[str]:
    """Ids of the windows docked inside trayer that have a real size (the icons)."""
    tree = subprocess.run(["xwininfo", "-tree", "-id", tray_window], env=env, text=True,
                          capture_output=True, timeout=30).stdout
    return [m.group(1) for m in re.finditer(r"^\s+(0x[0-9a-f]+) .*?(\d+)x(\d+)\+", tree, re.M)
            if int(m.group(2)) >= 8 and int(m.group(3)) >= 8]


def mapped_windows(env: dict[str, str]) -> set[str]:
    return set(xdotool(env, "search", "--onlyvisible", "--name", "").split())


def choose_from_tray_menu(env: dict[str, str], tray: str, icon: str, command: str,
                          submenu_item: int | None = None) -> None:
    """Right-click the icon, then Down×N Return, as a keyboard user would; with
    ``submenu_item`` (0-based), Right opens the submenu and Down×k Return picks in it."""
    xdotool(env, "windowraise", tray)  # no window manager keeps the dock above big windows
    before = mapped_windows(env)
    xdotool(env, "mousemove", "--window", icon, "5", "5")
    xdotool(env, "click", "3")
    wait_for(lambda: mapped_windows(env) - before, 20, what="the tray menu popped up")
    time.sleep(0.5)  # GTK maps the menu before it grabs the keyboard
    for _ in range(menu_position(command)):
        xdotool(env, "key", "Down")
    if submenu_item is not None:
        xdotool(env, "key", "Right")  # opens the submenu on its first item
        time.sleep(0.5)
        for _ in range(submenu_item):
            xdotool(env, "key", "Down")
    xdotool(env, "key", "Return")
