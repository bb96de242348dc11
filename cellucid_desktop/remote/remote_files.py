"""Browsing the remote file system over the host's signed-in master (no prompt).

``list_dir(master, path)`` lists one folder: sub-folders, Zarr stores (folders with
``zarr.json`` or ``.zgroup`` at their root, opened as one dataset) and files, each with
its size and modification time, and whether the app can open it (the formats the data
layer reads: ``.h5ad``, ``.h5mu``, ``.loom``, ``.zarr`` stores, zipped ``.zarr.zip``).
The listing runs one small POSIX ``sh`` script (``remote_shell.list_script``) with the
path as a quoted argument; names come back NUL-separated, so any file name is safe.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from cellucid_desktop.remote import remote_shell
from cellucid_desktop.remote.master import Master
from cellucid_desktop.remote.ssh_process import SshError

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
    if path is not None and ("\0" in path or "\n" in path):
        raise ListError("A folder name cannot contain control characters.")
    marker = remote_shell.new_marker()
    try:
        result = master.run(remote_shell.in_login_shell(),
                            input=remote_shell.list_script(marker, path=path),
                            timeout=LIST_TIMEOUT)
    except SshError as exc:
        raise ListError(exc.problem.message) from exc
    return parse_listing(marker, result.stdout, master.host.target)


def parse_listing(marker: str, out: str, host: str) -> Listing:
    """The listing from ``list_script``'s output (see its docstring)."""
    head, sep, rest = out.partition(f"{marker} entries \n")
    reply = remote_shell.parse(marker, head.splitlines())
    for key, sentence in (("not-found", "There is no folder {} on " + host + "."),
                          ("not-dir", "{} on " + host + " is a file, not a folder."),
                          ("denied", "You may not open the folder {} on " + host + ".")):
        if reply.has(key):
            raise ListError(sentence.format(reply.get(key)))
    where = reply.get("path")
    if not sep or where is None:
        raise ListError(f"Could not list the folder on {host} (no answer from its shell).")
    # Names may hold any byte but NUL (newlines too): split on the markers.
    records, _, rest = rest.partition(f"\n{marker} stores \n")
    stores_text, _, _ = rest.partition(f"\n{marker} done")
    stores = {name for name in stores_text.split("\0") if name}
    entries: list[Entry] = []
    for record in records.split("\0"):
        parts = record.split("\t", 3)
        if len(parts) != 4:
            continue
        kind, size, mtime, name = parts
        full = posixpath.join(where, name)
        if kind == "d" and name in stores:
            entries.append(Entry(name, full, "store", None, _number(mtime), True))
        elif kind == "d":
            entries.append(Entry(name, full, "dir", None, _number(mtime), False))
        elif kind == "f":
            size_n = _number(size)
            entries.append(Entry(name, full, "file", int(size_n) if size_n is not None
                                 else None, _number(mtime), openable(name)))
    entries.sort(key=lambda e: (e.kind == "file", e.name.lower(), e.name))
    parent = None if where == "/" else posixpath.dirname(where)
    return Listing(where, parent, tuple(entries[:MAX_ENTRIES]), len(entries) > MAX_ENTRIES)


def openable(name: str) -> bool:
    """A file name the data layer reads (a store folder is decided by its contents)."""
    return name.lower().endswith(OPENABLE_ENDINGS)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
