"""Answer the JavaScript calls a closed window will never answer (pywebview 6.2.1, Qt).

``BrowserView.evaluate_js`` (behind ``window.evaluate_js`` and ``window.run_js``, and
called by pywebview's own page-setup thread after every page load) hands the script to
the GUI thread and waits on a semaphore that only Qt's ``runJavaScript`` callback
releases. When the window closes its page is deleted, and once the GUI loop has ended
nothing runs at all: the callback never comes and the caller waits forever. The setup
thread is not a daemon, so Python's exit then waits for it: Quit right after opening
windows lasted until the app's 20 s force-exit (issue 9.2). pywebview releases these
waits on close for WinForms and GTK (r0x0r/pywebview#987), not for Qt; this does it for
Qt. A released call returns an empty result, as a call to a closed window does there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any


def release_pending(window: Any) -> int:
    """Wake every call waiting on ``window``'s JavaScript; how many there were."""
    view = getattr(window, "native", None)
    pending = getattr(view, "_js_results", None)  # {id: {"semaphore": ..., ...}}
    if not pending:
        return 0
    waits = list(pending.values())
    for wait in waits:
        wait["semaphore"].release()
    return len(waits)


def release_all_at_exit(windows: Iterable[Any], within: float = 2.0) -> None:
    """After the GUI loop ended: keep answering the windows' JavaScript calls, including
    those pywebview's threads are only about to make, until every non-daemon thread
    has ended (or ``within`` seconds passed), so that the process can exit."""
    windows = list(windows)
    deadline = time.monotonic() + within
    me = threading.current_thread()
    while True:
        for window in windows:
            release_pending(window)
        waiting = [t for t in threading.enumerate()
                   if t is not me and not t.daemon and t.is_alive()]
        if not waiting or time.monotonic() > deadline:
            return
        waiting[0].join(0.05)
