"""Operating-system integration: menu entry, icon and the dataset file associations.

One module per OS builds that OS's data (Linux .desktop + shared-mime-info XML, macOS
Info.plist, Windows registry/Inno Setup). The packaging scripts and
`cellucid-desktop integrate` both use them, so installers and pip installs agree.

Each OS is told what it allows: files by their name ending everywhere (`.h5ad`, `.h5mu`,
`.loom`; `.zarr.zip` where a type may be named by a double ending, Linux and macOS), and
Zarr store folders only on macOS, whose type declarations may name folders. Linux file
managers type every folder `inode/directory`, and Windows associates no folder by its
ending; there a store folder is opened with the app's folder dialog, by dropping it, or
from the command line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_ID = "cellucid-desktop"          # desktop-file id, icon name, executable name
APP_NAME = "Cellucid Desktop"
COMMENT = "View single-cell datasets (AnnData, MuData, loom), local or on a remote server"


@dataclass(frozen=True)
class DataType:
    """One kind of dataset the app opens, as the OS type systems name it."""

    ending: str  # name ending without the first dot: "h5ad", "zarr.zip", "zarr"
    mime: str
    description: str
    uti: str  # macOS type identifier (imported: their makers export none)
    container: str  # "hdf5", "zip" or "folder"


DATA_TYPES = (
    DataType("h5ad", "application/x-anndata", "AnnData single-cell dataset",
             "org.scverse.anndata", "hdf5"),
    DataType("h5mu", "application/x-mudata", "MuData multimodal single-cell dataset",
             "org.scverse.mudata", "hdf5"),
    DataType("loom", "application/x-loom", "Loom single-cell dataset", "org.loompy.loom",
             "hdf5"),
    DataType("zarr.zip", "application/x-anndata-zarr-zip", "Zipped AnnData Zarr store",
             "org.scverse.anndata.zarr-zip", "zip"),
    DataType("zarr", "inode/x-zarr-store", "AnnData Zarr store", "org.scverse.anndata.zarr",
             "folder"),
)
# Files: what Linux MIME data and Windows registry may declare (folders never).
FILE_TYPES = tuple(t for t in DATA_TYPES if t.container != "folder")


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
