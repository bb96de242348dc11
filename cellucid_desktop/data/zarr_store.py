"""AnnData Zarr stores: open a folder, a zipped store or any key-value source lazily, and
build the consolidated metadata a browser needs when a folder lacks it.

zarr-python 3 reads both Zarr formats anndata writes (format 2 up to anndata 0.11, and
format 3 from 0.11 on); chunks are read and decompressed on demand, so a gene, a column
or an embedding costs the chunks it touches. A folder is read with zarr's own
LocalStore. A zipped store and a store on a remote server are read through
``KeyStore``: zarr's store interface over one function returning a key's bytes, so the
same class serves a local ZIP, a ZIP read with HTTP Range requests, and a remote
folder read key by key.
"""

from __future__ import annotations

import asyncio
import json
import os
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import zarr
from zarr.abc.store import (ByteRequest, OffsetByteRequest, RangeByteRequest, Store,
                            SuffixByteRequest)
from zarr.core.buffer import Buffer, BufferPrototype

from cellucid_desktop.data.errors import READ_ERRORS, DatasetError

V2_ROOT_KEYS = (".zgroup", ".zattrs", ".zmetadata")
V2_METADATA = frozenset({".zgroup", ".zattrs", ".zarray"})
V3_METADATA = "zarr.json"

ReadKey = Callable[[str], "bytes | None"]


class KeyStore(Store):
    """A read-only zarr store over ``read(key) -> bytes | None`` (None: absent key).

    ``keys`` lists the store when the source can (a ZIP); a remote folder cannot be
    listed and is read through its consolidated metadata. ``read`` runs in a worker
    thread (it blocks on the file or the network), never on zarr's event loop.
    """

    supports_writes = False
    supports_deletes = False
    supports_partial_writes = False

    def __init__(self, read: ReadKey, name: str, keys: Iterable[str] | None = None) -> None:
        super().__init__(read_only=True)
        self._read = read
        self._name = name
        self._keys = None if keys is None else sorted(keys)

    @property
    def supports_listing(self) -> bool:  # type: ignore[override]
        return self._keys is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyStore) and other._read is self._read

    def __str__(self) -> str:
        return self._name

    async def get(self, key: str, prototype: BufferPrototype,
                  byte_range: ByteRequest | None = None) -> Buffer | None:
        data = await asyncio.to_thread(self._read, key)
        if data is None:
            return None
        return prototype.buffer.from_bytes(_slice(data, byte_range))

    async def get_partial_values(self, prototype: BufferPrototype,
                                 key_ranges: Iterable[tuple[str, ByteRequest | None]],
                                 ) -> list[Buffer | None]:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        if self._keys is not None:
            return key in self._keys
        return await asyncio.to_thread(self._read, key) is not None

    async def set(self, key: str, value: Buffer) -> None:
        raise ValueError("This store is read-only")

    async def delete(self, key: str) -> None:
        raise ValueError("This store is read-only")

    async def list(self) -> AsyncIterator[str]:
        for key in self._keys or ():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        for key in self._keys or ():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        seen: set[str] = set()
        for key in self._keys or ():
            if key.startswith(prefix):
                head = key[len(prefix):].split("/", 1)[0]
                if head not in seen:
                    seen.add(head)
                    yield head


def _slice(data: bytes, byte_range: ByteRequest | None) -> bytes:
    if byte_range is None:
        return data
    if isinstance(byte_range, RangeByteRequest):
        return data[byte_range.start:byte_range.end]
    if isinstance(byte_range, OffsetByteRequest):
        return data[byte_range.offset:]
    if isinstance(byte_range, SuffixByteRequest):
        return data[-byte_range.suffix:] if byte_range.suffix else b""
    raise TypeError(f"Unexpected byte range {byte_range!r}")


def open_group(store: Any, label: str, path: str = "") -> zarr.Group:
    """The store's root group, using consolidated metadata where the store has it."""
    try:
        return zarr.open_group(store, mode="r", path=path)
    except READ_ERRORS as exc:
        raise DatasetError(f"{label} cannot be opened as a Zarr store "
                           f"({type(exc).__name__}); it may be damaged or half-copied"
                           ) from None


def folder_format(folder: Path) -> int | None:
    """3 or 2 for a Zarr store folder (by its root metadata), None for any other folder."""
    if (folder / V3_METADATA).is_file():
        return 3
    if (folder / ".zgroup").is_file():
        return 2
    return None


class ZipReader:
    """The members of a zipped Zarr store, read from any seekable file (a local file or
    a RangeFile): zipfile reads the central directory, then each member on demand."""

    def __init__(self, file: BinaryIO, label: str) -> None:
        try:
            self.archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise DatasetError(f"{label} is not a readable ZIP archive ({exc}); it may be "
                               "truncated (incomplete copy or download?)") from None
        names = self.archive.namelist()
        self.root = zip_store_root(names)
        if self.root is None:
            self.archive.close()
            raise DatasetError(f"{label} is a ZIP archive but holds no Zarr store (no .zgroup, "
                               ".zmetadata or zarr.json); zip the folder adata.write_zarr wrote")
        self._prefix = f"{self.root}/" if self.root else ""
        self.keys = [n[len(self._prefix):] for n in names
                     if n.startswith(self._prefix) and not n.endswith("/")]
        self._members = set(self.keys)

    def read(self, key: str) -> bytes | None:
        if key not in self._members:
            return None
        return self.archive.read(self._prefix + key)

    def store(self, name: str) -> KeyStore:
        return KeyStore(self.read, name, self.keys)

    def close(self) -> None:
        self.archive.close()


def zip_store_root(names: Iterable[str]) -> str | None:
    """The folder inside a ZIP holding the store (shallowest root metadata), "" for the
    archive root, None when there is none; as cellucid 0.9.5 finds it."""
    roots = [PurePosixPath(n).parent for n in names
             if PurePosixPath(n).name in (*V2_ROOT_KEYS, V3_METADATA)]
    if not roots:
        return None
    shallowest = min(roots, key=lambda parent: (len(parent.parts), str(parent)))
    return "" if str(shallowest) == "." else str(shallowest)


# --- consolidated metadata of a folder, for serving it to a browser -------------------

def _is_array_folder(directory: str, files: list[str]) -> bool:
    if ".zarray" in files:
        return True
    if V3_METADATA not in files:
        return False
    try:
        document = json.loads(Path(directory, V3_METADATA).read_text(encoding="utf-8"))
    except (OSError, UnicodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and document.get("node_type") == "array"


def _metadata_files(root: Path, names: frozenset[str]) -> Iterator[tuple[str, Path]]:
    """Metadata files below ``root`` by store key; array folders (only chunks below,
    possibly millions) are not walked into."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        if _is_array_folder(directory, files):
            subdirectories.clear()
        for name in sorted(files):
            if name in names:
                path = Path(directory, name)
                yield path.relative_to(root).as_posix(), path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"The Zarr metadata {path.name} is not readable JSON "
                           f"({type(exc).__name__}); the store is damaged") from None


def consolidated_metadata(root: Path, zarr_format: int) -> tuple[str, bytes] | None:
    """The consolidated metadata a store folder lacks, as cellucid 0.9.5 builds it:
    (``.zmetadata``, document) for format 2, (``zarr.json``, the root document with
    inline ``consolidated_metadata``) for format 3; None when the store has it."""
    if zarr_format == 3:
        document = _read_json(root / V3_METADATA)
        if not isinstance(document, dict):
            raise DatasetError("The store's root zarr.json is not a JSON object; the store "
                               "is damaged")
        if isinstance(document.get("consolidated_metadata"), dict):
            return None
        nodes = {key.rsplit("/", 1)[0]: _read_json(path)
                 for key, path in _metadata_files(root, frozenset({V3_METADATA}))
                 if "/" in key}
        consolidated = {**document, "consolidated_metadata": {
            "kind": "inline", "must_understand": False, "metadata": nodes}}
        return V3_METADATA, json.dumps(consolidated).encode("utf-8")
    if (root / ".zmetadata").is_file():
        return None
    metadata = {key: _read_json(path) for key, path in _metadata_files(root, V2_METADATA)}
    document = {"zarr_consolidated_format": 1, "metadata": metadata}
    return ".zmetadata", json.dumps(document).encode("utf-8")
