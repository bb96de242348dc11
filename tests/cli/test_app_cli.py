"""The app command where no window can open: a clear line and exit 1, not a Qt abort."""

from __future__ import annotations

import os
import subprocess
import sys


def test_app_without_a_display_says_so_and_points_to_serve() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "cellucid_desktop", "--demo"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no graphical display found")
    assert "cellucid-desktop serve --demo" in lines[0]
