"""Small files written atomically and read back safely (a leaf: any layer may use it).

A crash (or power loss) in the middle of a write must never leave a half-written file
behind, so every write goes to a temp file in the same folder, is fsync'ed, then
``os.replace``d over the old one. A JSON file that is still unreadable (edited by hand,
disk trouble) is moved aside as ``<name>.corrupt-<time>`` and the caller's default is
used, with a message for the user instead of a crash.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@contextmanager
def replacing(path: Path, mode_of: Path | None = None) -> Iterator[Path]:
    """A temporary path next to ``path`` to write (by any means, another library
    included); fsync'ed and moved over ``path`` if the block succeeds, deleted if it
    fails. Raises OSError when the folder is not writable.

    The new file is private (0600) unless ``mode_of`` names a file whose permission
    bits it should get (a copy of a dataset is as readable as the dataset).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if mode_of is not None:
            os.chmod(tmp, os.stat(mode_of).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2).encode("utf-8"))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows has no directory fds)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path, default: Any) -> tuple[Any, str | None]:
    """The file's JSON, or ``default`` plus a user message if it was unreadable (moved aside)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default, None
    except OSError as exc:
        return default, f"Could not read {path.name} ({exc.strerror}); using defaults."
    try:
        data = json.loads(text)
        if not isinstance(data, type(default)):
            raise ValueError(f"expected a JSON {type(default).__name__}")
        return data, None
    except ValueError:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, aside)
        log.warning("Unreadable %s moved to %s", path, aside)
        return default, (f"{path.name} was damaged and has been reset; "
                         f"the old copy is kept as {aside.name}.")
