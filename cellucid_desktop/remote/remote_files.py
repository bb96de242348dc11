"""Browsing the remote file system over the host's signed-in master (no prompt).

``list_dir(master, path)`` lists one folder: sub-folders, Zarr stores (folders with
``zarr.json`` or ``.zgroup`` at their root, opened as one dataset) and files, each with
its size and modification time, and whether the app can open it (the formats the data
layer reads: ``.h5ad``, ``.h5mu``, ``.loom``, ``.zarr`` stores, zipped ``.zarr.zip``).
The listing runs one small POSIX ``sh`` script (``remote_shell.list_script``) with the
path as a quoted argument; names come back NUL-separated, so any file name is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from cellucid_desktop.remote.master import Master

OPENABLE_ENDINGS = (".h5ad", ".h5mu", ".loom", ".zarr.zip")
LIST_TIMEOUT = 30.0
MAX_ENTRIES = 5000  # a folder with more lists the first ones (sorted) and says so


@dataclass(frozen=True)
class Entry:
    """One item of a folder. ``kind`` is "dir", "file" or "store" (a Zarr folder);
    ``size`` in bytes (files; None for folders), ``mtime`` in seconds since the epoch;
    ``openable``: the app can open it as a dataset."""

    name: str
    path: str
    kind: str
    size: int | None
    mtime: float | None
    openable: bool


@dataclass(frozen=True)
class Listing:
    """A folder: its absolute ``path``, its ``parent`` (None at ``/``), its ``entries``
    (folders and stores first, then files, each by name) and ``truncated`` when it held
    more than ``MAX_ENTRIES``."""

    path: str
    parent: str | None
    entries: tuple[Entry, ...]
    truncated: bool = False


class ListError(Exception):
    """The folder cannot be listed; ``str()`` is one sentence (not found, not a folder,
    permission denied, the connection was lost)."""


def list_dir(master: Master, path: str | None = None) -> Listing:
    """List ``path`` on the master's host (None = the home folder; ``~`` and ``~/...``
    are the home folder too). Raises ``ListError``."""
    raise NotImplementedError
