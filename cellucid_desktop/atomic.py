"""Replace a file so readers see the old or the new version, never a mix (a leaf helper).

The new content is written to a temporary file in the same folder, fsync'ed, then
``os.replace``d over the target, and the folder is fsync'ed so the rename itself
survives a crash or power loss.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path, mode_of: Path | None = None) -> Iterator[Path]:
    """A temporary path next to ``path`` to write; moved over ``path`` if the block
    succeeds, deleted if it fails. Raises OSError when the folder is not writable.

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
    """Replace ``path`` with ``data``."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows has no directory fds)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
