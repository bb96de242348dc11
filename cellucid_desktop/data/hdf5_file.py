"""Open an HDF5 file (.h5ad, .h5mu, .loom) read-only, with one sentence for each way
it can fail: missing, a folder, empty, not HDF5, truncated, unreadable."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

import h5py

from cellucid_desktop.data.errors import DatasetError, SourceUnreachable

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
MAGIC_OFFSETS = (0, 512, 1024, 2048)  # where HDF5 allows its signature (a user block)


def has_hdf5_magic(head: bytes) -> bool:
    """True when the HDF5 signature sits at one of the offsets HDF5 allows for it
    (``head`` is the file's first 2056 bytes or fewer)."""
    return any(head[offset:offset + 8] == HDF5_MAGIC for offset in MAGIC_OFFSETS)


def read_head(path: Path, size: int = MAGIC_OFFSETS[-1] + 8) -> bytes:
    """The first bytes of a regular file, or a DatasetError saying why it cannot be read."""
    if not path.exists():
        raise DatasetError(f"File not found: {path}")
    if not path.is_file():
        raise DatasetError(f"{path} is not a regular file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
    except PermissionError:
        raise DatasetError(f"Permission denied: cannot read {path}") from None
    except OSError as exc:
        raise DatasetError(f"Cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise DatasetError(f"{path} is empty (0 bytes), not a dataset file")
    return head


def open_hdf5(source: str | os.PathLike[str] | BinaryIO, label: str) -> h5py.File:
    """Open read-only, turning HDF5's errors into a DatasetError that names ``label``.

    ``source`` is a path or a seekable binary file object (for example one that reads
    a remote file through HTTP Range requests).
    """
    try:
        return h5py.File(source, "r")
    except SourceUnreachable:
        raise  # a tunnel that is down, not a damaged file
    except OSError as exc:
        text = str(exc)
        if "truncated" in text:
            raise DatasetError(
                f"{label} is truncated or damaged (incomplete copy or download?); "
                "copy it again"
            ) from None
        if getattr(exc, "errno", None) == errno.EACCES or "Permission denied" in text:
            raise DatasetError(f"Permission denied: cannot read {label}") from None
        raise DatasetError(f"{label} cannot be opened as HDF5: {_hdf5_reason(text)}") from None


def _hdf5_reason(text: str) -> str:
    """The useful tail of an HDF5 error ('Unable to open file (reason)')."""
    start, end = text.rfind("("), text.rfind(")")
    return text[start + 1 : end] if 0 <= start < end else text
