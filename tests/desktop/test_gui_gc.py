"""Python's cyclic garbage (a closed window's Qt objects) is freed on the GUI thread,
however busy worker threads are: Qt aborts the app when a window dies on another."""

from __future__ import annotations

import textwrap

from tests.desktop.gui import run_qt_script

SCRIPT = textwrap.dedent("""
    import gc, threading, time
    from qtpy.QtCore import QCoreApplication, QTimer
    from cellucid_desktop.desktop.gui_gc import GuiThreadCollector

    app = QCoreApplication([])
    collector = GuiThreadCollector(app)
    freed_on = []

    class Window:  # stands for a closed window: garbage only the cyclic collector frees
        def __init__(self):
            self.me = self
        def __del__(self):
            freed_on.append(threading.current_thread().name)

    kept = []

    def worker():  # a remote connection opening: allocates far past the thresholds
        for _ in range(3):
            Window()
            kept.extend({} for _ in range(5000))

    Window()
    threading.Thread(target=worker, name="worker").start()
    deadline = time.monotonic() + 30
    done = QTimer(app)
    done.timeout.connect(lambda: (len(freed_on) == 4 or time.monotonic() > deadline)
                         and app.quit())
    done.start(100)
    app.exec()
    print(gc.isenabled(), len(freed_on), sorted(set(freed_on)))
""")


def test_cyclic_garbage_made_anywhere_is_freed_on_the_gui_thread_only() -> None:
    done = run_qt_script(SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False 4 ['MainThread']"
