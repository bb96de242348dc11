"""Every name that crosses a boundary of the desktop app, in one file.

A name here is read on one side and written on another: the tray child process and the
app (pipe messages), a later launch or ``cellucid-desktop open|quit|connect`` and the
running app (control routes), our pages and Python (JS-bridge methods), the GUI tests and
the app (test surface). Keeping them together (JupyterLab Desktop's ``eventtypes.ts`` is
the model) means a rename is one edit and ``tests/desktop/test_ipc_names.py`` checks that
the pages call only bridge methods listed here and that every listed one exists.
Plain module: no imports of pywebview, Qt or the rest of the app.
"""

from __future__ import annotations

from enum import StrEnum


# ----- windows: pages of our own, and the keys every window is known by ---------------

class Page(StrEnum):
    """The app's own pages (``/_desktop/pages/<name>.html``); each is also its window key."""

    HOME = "home"
    SETTINGS = "settings"
    CONNECT = "connect"
    ABOUT = "about"
    WEBAPP = "webapp"  # the progress window of *Open in Cellucid web app*
    PROMPT = "prompt"  # ssh sign-in questions (desktop/prompt_window.py)


VIEWER = "viewer:"  # + dataset id: a local dataset in the built-in viewer
WEBAPP = "webapp:"  # + dataset id: the same dataset in the official web app
REMOTE = "remote:"  # + connection id: a remote viewer (no JS bridge)


def viewer_key(dataset_id: str) -> str:
    return VIEWER + dataset_id


def webapp_key(dataset_id: str) -> str:
    return WEBAPP + dataset_id


def remote_key(live_id: str) -> str:
    return REMOTE + live_id


REMOTE_FILE = "file:"  # + a recent remote file's key: an entry of the tray's Recent remotes


# ----- the tray child process (desktop/tray.py), over a multiprocessing Pipe -----------

class ToTray(StrEnum):
    """Parent -> child: ``(MENU, {"recent": [[path, label]], "windows": [[key, title]],
    "remotes": [[key, label]]})``, ``(NOTIFY, text)``, ``(STOP,)``."""

    MENU = "menu"
    NOTIFY = "notify"
    STOP = "stop"


class TrayCommand(StrEnum):
    """Child -> parent: ``(READY,)`` once the icon shows, then the user's menu choices,
    with an argument for the submenus' entries (a path, a window key, a remote key)."""

    READY = "ready"
    SHOW = "show"
    OPEN_DIALOG = "open_dialog"
    OPEN_RECENT = "open_recent"      # + a local path
    CONNECT = "connect"
    OPEN_REMOTE = "open_remote"      # + a remembered connection's or remote file's key
    FOCUS = "focus"                  # + a window key
    BROWSER = "browser"
    WEBAPP = "webapp"
    SETTINGS = "settings"
    LOG = "log"
    ABOUT = "about"
    QUIT = "quit"


class TraySubmenu(StrEnum):
    """The menu's submenus (entries of ``ToTray.MENU``'s state)."""

    RECENT = "recent"
    REMOTES = "remotes"
    WINDOWS = "windows"


# ----- control routes: a later launch and the CLI talk to the running app --------------

CONTROL_PREFIX = "/_desktop/control"
NONCE_HEADER = "X-Cellucid-Nonce"
PROOF_HEADER = "X-Cellucid-Proof"


class Control(StrEnum):
    """``POST CONTROL_PREFIX/<name>``; every one but HELLO needs the proof
    (desktop/instance.py)."""

    HELLO = "hello"
    PING = "ping"
    OPEN = "open"        # {"paths": [...], "demo": bool}
    SHOW = "show"
    QUIT = "quit"
    CONNECT = "connect"  # {"form": {...}} or {"plan": LaunchPlan json} starts,
    #                      {"id": ...} polls


# ----- the test surface (only with CELLUCID_DESKTOP_TEST_TOKEN set) --------------------

TEST_TOKEN_VAR = "CELLUCID_DESKTOP_TEST_TOKEN"
TEST_TOKEN_HEADER = "X-Cellucid-Test-Token"
TEST_PREFIX = "/__test__/"


class TestSurface(StrEnum):
    __test__ = False  # not a pytest test class

    WINDOWS = "windows"  # keys, titles, addresses, load times
    EVAL = "eval"        # {"key": ..., "js": ...}: JavaScript in one window
    PROMPTS = "prompts"  # the sign-in questions shown so far


# ----- JS-bridge methods (``window.pywebview.api.<name>``) ----------------------------

# Our pages (home, settings, about, connect, web-app progress, sign-in prompt).
PAGE_BRIDGE = frozenset({
    "state", "dismiss",
    # datasets (home)
    "open_dialog", "open_folder_dialog", "open_demo", "open_recent", "open_modality",
    "remove_recent", "focus",
    # windows
    "open_connect", "open_settings",
    # settings
    "save_settings", "clear_cache", "show_log",
    # Open in Cellucid web app: its progress window
    "webapp_status",
    # the connect dialog (desktop/connect/bridge.py)
    "connect_preview", "connect_start", "connect_status", "connect_sessions",
    "connect_disconnect", "connect_save", "connect_saved", "connect_recent",
    "connect_delete", "connect_find", "connect_sign_in", "connect_browse", "connect_open",
    "open_remote_file",
    # the sign-in prompt (desktop/prompt_window.py)
    "prompt_current", "prompt_answer", "prompt_cancel",
})

# Viewer windows showing our own viewer (remote viewers get no bridge at all).
VIEWER_BRIDGE = frozenset({"save_file", "save_dataset_copy", "open_in_webapp"})
