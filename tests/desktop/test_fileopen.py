"""macOS's open-document events (QFileOpenEvent) reach the app's open function."""

from __future__ import annotations

import textwrap

from tests.desktop.gui import run_qt_script

SCRIPT = textwrap.dedent("""
    import threading
    from qtpy.QtCore import QCoreApplication
    from qtpy.QtGui import QFileOpenEvent
    from cellucid_desktop.desktop.fileopen import install_file_open_handler

    got, done = [], threading.Event()
    app = install_file_open_handler(lambda paths: (got.extend(paths), done.set()))
    # What Qt builds from macOS's "open documents" Apple Event, delivered to the app.
    QCoreApplication.sendEvent(app, QFileOpenEvent("/data/pbmc.h5ad"))
    print(done.wait(10), got)
""")


def test_a_file_open_event_opens_the_file():
    done = run_qt_script(SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['/data/pbmc.h5ad']"
