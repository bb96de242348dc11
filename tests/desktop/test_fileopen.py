"""macOS's open-document events (QFileOpenEvent) reach the app's open function."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
    done = subprocess.run([sys.executable, "-c", SCRIPT], text=True, capture_output=True,
                          timeout=120, cwd=Path(__file__).parents[2],
                          env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
                               "QT_API": "pyside6", "HOME": str(Path.home())})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['/data/pbmc.h5ad']"
