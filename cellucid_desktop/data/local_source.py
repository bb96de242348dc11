"""Datasets on this machine: `.h5ad`, `.h5mu` and `.loom` files, AnnData (and MuData)
Zarr store folders and zipped stores.

``open_local(path)`` tells the format the way cellucid 0.9.5 does (a folder with
``zarr.json`` or ``.zgroup`` at its root is a Zarr store; a file is what its first bytes
say: HDF5 or ZIP; an HDF5 root marked ``mudata`` is MuData, one with ``/matrix`` and
``/col_attrs`` is loom, anything else is read as AnnData) and answers every way a path
can be unusable with one sentence that names it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.hdf5_file import has_hdf5_magic, open_hdf5, read_head
from cellucid_desktop.data.formats import describe, open_layout
from cellucid_desktop.data.layout import Layout
from cellucid_desktop.data.nodes import attr_str, child, is_group
from cellucid_desktop.data.reader import stat_identity
from cellucid_desktop.data.source import DatasetSource, Publication, StoreKey

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
FILE_ENDINGS = (".h5ad", ".h5mu", ".loom")  # the route keeps the file's own ending


def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError:
        raise DatasetError(f"The {what} of this dataset is no longer readable; open it again"
                           ) from None


def _hdf5_kind(path: Path) -> str:
    """h5ad, h5mu or loom, from the root's marks (names only where there are none)."""
    h5 = open_hdf5(path, str(path))
    try:
        encoding = attr_str(h5, "encoding-type").lower()
        suffix = path.suffix.lower()
        if encoding in ("anndata", "mudata"):
            return "h5ad" if encoding == "anndata" else "h5mu"
        if is_group(child(h5, "col_attrs")) or suffix == ".loom":
            return "loom"
        return "h5mu" if suffix == ".h5mu" else "h5ad"
    finally:
        h5.close()


class LocalFileSource(DatasetSource):
    """An HDF5 file (h5ad, h5mu modality, loom), published as one file."""

    def __init__(self, path: Path, kind: str, modality: str | None = None) -> None:
        self.local_path = path
        self.kind = kind
        self.label = str(path)
        h5 = open_hdf5(path, self.label)
        try:
            self._container = describe(h5, kind, modality, self.label)
        finally:
            h5.close()
        self.modalities, self.modality = self._container.modalities, self._container.modality
        self.location = f"{path}#{self.modality}" if self.modality else str(path)
        # cellucid publishes the modality only when it was chosen, not when defaulted
        self._defaults = {"modality": modality} if modality else {}

    def identity(self) -> str:
        stat = stat_identity(_stat(self.local_path, "file"))
        return f"{stat}-{self.modality}" if self.modality else stat

    def open(self) -> Layout:
        h5 = open_hdf5(self.local_path, "The file")
        return open_layout(h5, self.kind, self.modality, "The file", h5.close)

    def size(self) -> int:
        return _stat(self.local_path, "file").st_size

    def positioned_file(self) -> Path:
        return self.local_path

    def raw_file(self) -> tuple[BinaryIO, int]:
        handle = open(self.local_path, "rb")  # noqa: SIM115 - the caller closes it
        return handle, os.fstat(handle.fileno()).st_size

    def publication(self) -> Publication:
        ending = next((e for e in FILE_ENDINGS if self.local_path.name.lower().endswith(e)),
                      {"h5mu": ".h5mu", "loom": ".loom"}.get(self.kind, ".h5ad"))
        return Publication(self.kind, "file", ending, self._container.counts, self._defaults)

    def store_file(self) -> Path:
        return self.local_path


class LocalZarrSource(DatasetSource):
    """A Zarr store: a folder (published key by key) or a ZIP (published as one file)."""

    def __init__(self, path: Path, layout: str, modality: str | None = None) -> None:
        self.local_path = path
        self.layout = layout
        self.label = str(path)
        self._generated: tuple[str, tuple[str, bytes] | None] | None = None
        root, close = self._open_root(self.label)
        try:
            encoding = attr_str(root, "encoding-type").lower()
            self.kind = "mudata-zarr" if encoding == "mudata" else "zarr"
            self._container = describe(root, self.kind, modality, self.label)
        finally:
            close()
        self.modalities, self.modality = self._container.modalities, self._container.modality
        self.location = f"{path}#{self.modality}" if self.modality else str(path)
        self._defaults = {"modality": modality} if modality else {}
        if layout == "folder":
            self._generated_metadata()  # as cellucid does at start; checks the metadata

    def _open_root(self, label: str) -> tuple[Any, Any]:
        """(root group, close) of the store."""
        from cellucid_desktop.data import zarr_store

        if self.layout == "folder":
            if zarr_store.folder_format(self.local_path) is None:
                raise DatasetError(_not_a_store(self.local_path))
            from zarr.storage import LocalStore

            store = LocalStore(self.local_path, read_only=True)
            return zarr_store.open_group(store, label), store.close
        try:
            handle = open(self.local_path, "rb")  # noqa: SIM115 - closed with the reader
        except OSError as exc:
            raise DatasetError(f"Cannot read {label}: {exc.strerror or exc}") from None
        try:
            reader = zarr_store.ZipReader(handle, label)
        except BaseException:
            handle.close()
            raise

        def close() -> None:
            reader.close()
            handle.close()

        try:
            return zarr_store.open_group(reader.store(label), label), close
        except BaseException:
            close()
            raise

    def _version_files(self) -> list[Path]:
        if self.layout == "zip":
            return [self.local_path]
        names = ("zarr.json",) if (self.local_path / "zarr.json").exists() else (
            ".zgroup", ".zattrs", ".zmetadata")
        return [self.local_path / n for n in names if (self.local_path / n).exists()]

    def identity(self) -> str:
        parts = [stat_identity(_stat(p, "store")) for p in self._version_files()]
        if not parts:
            raise DatasetError("The Zarr store of this dataset is no longer readable; open it "
                               "again")
        stat = "-".join(parts) if len(parts) == 1 else _digest("/".join(parts))
        return f"{stat}-{self.modality}" if self.modality else stat

    def open(self) -> Layout:
        root, close = self._open_root("The store")
        return open_layout(root, self.kind, self.modality, "The Zarr store", close)

    def size(self) -> int | None:
        return _stat(self.local_path, "store").st_size if self.layout == "zip" else None

    def publication(self) -> Publication:
        ending = ".zarr" if self.layout == "folder" else ".zarr.zip"
        return Publication(self.kind, self.layout, ending, self._container.counts,
                           self._defaults)

    def store_file(self) -> Path | None:
        return self.local_path if self.layout == "zip" else None

    def store_key(self, key: str) -> StoreKey | None:
        """A key of the folder: a file inside the store, or the consolidated metadata
        built in memory when the store lacks it (a browser cannot list a folder)."""
        generated = self._generated_metadata()
        if generated is not None and key == generated[0]:
            return StoreKey(data=generated[1], etag=f'"{_digest(generated[1], 32)}"')
        path = self.local_path.joinpath(*key.split("/"))
        try:
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        root = self.local_path.resolve()
        if not resolved.is_file() or not resolved.is_relative_to(root):
            return None
        return StoreKey(path=resolved)

    def _generated_metadata(self) -> tuple[str, bytes] | None:
        """Built once per version of the root metadata."""
        from cellucid_desktop.data import zarr_store

        version = self.identity()
        cached = self._generated
        if cached is None or cached[0] != version:
            fmt = zarr_store.folder_format(self.local_path) or 2
            cached = self._generated = (version, zarr_store.consolidated_metadata(
                self.local_path, fmt))
        return cached[1]


def _digest(data: str | bytes, length: int = 24) -> str:
    import hashlib

    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:length]


def _not_a_store(path: Path) -> str:
    if (path / ".zattrs").is_file() or (path / ".zarray").is_file():
        return (f"{path} looks like part of a Zarr store but has no .zgroup or zarr.json at "
                "its root (half-written, or a sub-folder of the store?); open the store's "
                "top folder")
    if path.name.lower().endswith(".zarr"):
        return (f"{path} is named like a Zarr store but has no zarr.json or .zgroup at its "
                "root (an incomplete copy?)")
    return (f"{path} is a folder, not a dataset: open an .h5ad, .h5mu or .loom file, a "
            ".zarr store folder or a zipped store")


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """The absolute path with symbolic links resolved; DatasetError for a link loop
    (or a path the OS cannot resolve), so every caller gets one sentence."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # RuntimeError: a loop, before Python 3.13
        raise DatasetError(f"{path} cannot be opened: it is a symbolic link that leads "
                           "back to itself (a link loop); open the file it should name"
                           ) from None


def open_local(path: str | os.PathLike[str], modality: str | None = None) -> DatasetSource:
    """The source for a local file or folder; DatasetError with a sentence otherwise."""
    resolved = resolve_path(path)
    if not resolved.exists():
        raise DatasetError(f"File not found: {resolved}")
    if resolved.is_dir():
        return LocalZarrSource(resolved, "folder", modality)
    head = read_head(resolved)
    if head[:4] in ZIP_MAGICS:
        return LocalZarrSource(resolved, "zip", modality)
    if not has_hdf5_magic(head):
        ending = next((e for e in FILE_ENDINGS if resolved.name.lower().endswith(e)), None)
        if ending is not None:
            raise DatasetError(f"{resolved} is not an HDF5 file, so it cannot be "
                               f"{'an' if ending == '.h5ad' else 'a'} {ending} file")
        raise DatasetError(f"{resolved} is neither an HDF5 file (.h5ad, .h5mu, .loom) nor a "
                           "zipped Zarr store, so it cannot be opened")
    return LocalFileSource(resolved, _hdf5_kind(resolved), modality)
