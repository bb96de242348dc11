"""Python's cyclic garbage is collected on the GUI thread only.

Qt objects must be destroyed on the thread they live on (the GUI thread). A closed
pywebview window is garbage in reference cycles (its ``Window`` and its events point at
each other; the Qt window, its JS bridge and its page do too), so its QMainWindow,
QWebEngineView (with its OpenGL context), page and profile are freed by Python's cyclic
collector, which runs on whatever thread crosses the allocation threshold next. When
that was a worker thread (opening a remote connection after Disconnect), Qt aborted the
app: "Cannot make QOpenGLContext current in a different thread". So the automatic
collector is switched off and a timer on the GUI thread collects instead, with the
same thresholds (pyqtgraph's ``GarbageCollector`` does the same for the same reason).
"""

from __future__ import annotations

import gc
from typing import Any

INTERVAL_MS = 1000  # cyclic garbage waits at most this long; plain refcounting is immediate


class GuiThreadCollector:
    """Create on the GUI thread, with the QApplication (the timer's parent), before the
    GUI loop starts; collects while that loop runs."""

    def __init__(self, app: Any) -> None:
        from qtpy.QtCore import QTimer

        self._thresholds = gc.get_threshold()
        gc.disable()
        self._timer = QTimer(app)
        self._timer.timeout.connect(self.collect)
        self._timer.start(INTERVAL_MS)

    def collect(self) -> None:
        """What the automatic collector would have done by now: the youngest generation
        past its threshold, and the older ones whose thresholds that crosses."""
        counts = gc.get_count()
        for generation, threshold in enumerate(self._thresholds):
            if counts[generation] <= threshold:
                return
            gc.collect(generation)
