"""Operating-system integration: menu entry, icon and the `.h5ad` file association.

One module per OS builds that OS's data (Linux .desktop + shared-mime-info XML, macOS
Info.plist, Windows registry/Inno Setup). The packaging scripts and
`cellucid-desktop integrate` both use them, so installers and pip installs agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_ID = "cellucid-desktop"          # desktop-file id, icon name, executable name
APP_NAME = "Cellucid Desktop"
COMMENT = "View single-cell datasets (AnnData .h5ad), local or on a remote server"
EXTENSION = "h5ad"
MIME_TYPE = "application/x-anndata"
TYPE_DESCRIPTION = "AnnData single-cell dataset"


def launch_command() -> list[str]:
    """The argv that starts this installation of the app.

    Frozen: the bundle's own binary. From pip: the `cellucid-desktop` script installed next
    to this Python, else ``python -m cellucid_desktop`` (always works, even if unscripted).
    """
    if getattr(sys, "frozen", False):
        return [str(Path(sys.executable).resolve())]
    script_dir = Path(sys.executable).parent
    for name in (APP_ID, f"{APP_ID}.exe"):
        script = script_dir / name
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
    return [str(Path(sys.executable)), "-m", "cellucid_desktop"]
