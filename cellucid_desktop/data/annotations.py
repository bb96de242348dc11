"""Saved selections: categorical obs columns kept beside a dataset, never inside it.

Where: ``<file>.cellucid-annotations.h5`` next to the dataset (file or store) when its
folder is writable (it travels with the data), otherwise in the app's data folder under
a name derived from the dataset's identity (``<data>/annotations/<key>.h5``): the
location of a local dataset, the remote file's path and version for a remote one. The
user's data is never written.

Format (HDF5, format 1): attributes ``format``, ``n_cells``, ``obs_names_sha256`` (which
cells the codes refer to) and ``column-order``; under ``columns/`` one AnnData 0.8+
categorical element per saved column (codes -1 where a cell is in no category), so
``anndata.io.read_elem(h5["columns/<key>"])`` reads one as a pandas Categorical.

Every save writes the whole file to a temporary name and renames it over the old one.
A sidecar that cannot be read, or that was made for other cells (another cell count or
other obs names), is renamed aside (``.damaged-<time>``) with a message, never a crash.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from cellucid_desktop import __version__, paths
from cellucid_desktop.atomic_files import atomic_write_bytes
from cellucid_desktop.data.elements import decode_strings, read_strings
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad_writer import Categorical, write_categorical
from cellucid_desktop.data.obs import MAX_CATEGORIES, MISSING_CODE, ObsColumn
from cellucid_desktop.data.reader import stat_identity
from cellucid_desktop.data.selections import BadSelection, rows_from_json
from cellucid_desktop.data.source import DatasetSource

log = logging.getLogger(__name__)

FORMAT = 1
SIDECAR_SUFFIX = ".cellucid-annotations.h5"
MAX_NAME = 200


class AnnotationError(BadSelection):
    """A selection cannot be saved as asked (bad name, no categories)."""


def keyed_path(identity: str) -> Path:
    """The sidecar in the app's data folder for a dataset known by ``identity``."""
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return paths.data_dir() / "annotations" / f"{digest}.h5"


def annotation_locations(source: DatasetSource) -> list[Path]:
    """Where a dataset's saved selections may be: next to a local file or store (one
    sidecar per MuData modality, whose cells differ), else in the app's data folder
    under the dataset's identity (a remote one's stays the same across connections)."""
    if source.local_path is not None:
        name = source.local_path.name + (f".{source.modality}" if source.modality else "")
        return [source.local_path.with_name(name + SIDECAR_SUFFIX),
                keyed_path(f"local\0{source.location}")]
    return [keyed_path(f"remote\0{source.annotation_key()}")]


def names_digest(names: Sequence[str]) -> str:
    """Identifies which cells, in which order, a sidecar's codes refer to."""
    text = "\0".join(str(n) for n in names)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(text: object, what: str) -> str:
    """A column key or category label: visible text without '/' (HDF5 paths) or
    control characters, at most MAX_NAME characters."""
    if not isinstance(text, str) or not text.strip():
        raise AnnotationError(f"The {what} must be a non-empty text")
    if len(text) > MAX_NAME:
        raise AnnotationError(f"The {what} {text[:40]!r}... is longer than {MAX_NAME} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text):
        raise AnnotationError(f"The {what} {text!r} contains control characters")
    if what == "column name" and ("/" in text or text in ("_index", "__categories")):
        raise AnnotationError(f"The column name {text!r} cannot be used (no '/', not "
                              "'_index'); choose another")
    return text


@dataclass(frozen=True)
class SavedColumn:
    """One saved selection column: a category code per cell (-1: none)."""

    key: str
    categories: list[str]
    codes: np.ndarray

    def counts(self) -> list[int]:
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.categories)).tolist()

    def describe(self) -> dict:
        return {"key": self.key, "categories": self.categories, "counts": self.counts()}

    def as_obs(self) -> ObsColumn:
        """The column as every obs route serves one (uint16 codes, 65535 missing)."""
        codes = self.codes.astype(np.uint16)
        codes[self.codes < 0] = MISSING_CODE
        return ObsColumn(self.key, "categorical", codes, list(self.categories))

    @classmethod
    def from_rows(cls, key: str, categories: Mapping[str, Sequence[int]],
                  n_cells: int) -> SavedColumn:
        """A cell listed under several labels gets the last; cells in none: missing."""
        key = check_name(key, "column name")
        if not isinstance(categories, Mapping) or not categories:
            raise AnnotationError("Give the cells of at least one category, as "
                                  '{"label": [row, ...]}')
        if len(categories) > MAX_CATEGORIES:
            raise AnnotationError(f"A column holds at most {MAX_CATEGORIES:,} categories")
        codes = np.full(n_cells, -1, dtype=np.int32)
        labels = []
        for code, (label, rows) in enumerate(categories.items()):
            labels.append(check_name(label, "category label"))
            codes[rows_from_json(rows, n_cells, f"The cells of {label!r}")] = code
        return cls(key, labels, codes)


class AnnotationStore:
    """The saved columns of one dataset, read from and written to its sidecar.

    ``locations`` are tried in order: an existing sidecar is used where it is; a new
    one goes to the first location that can be written. The file is re-read when it
    changes on disk (another window or process saved).
    """

    def __init__(self, locations: Sequence[Path], n_cells: int,
                 obs_names: Callable[[], Sequence[str]]) -> None:
        self.locations = list(locations)
        self.n_cells = n_cells
        self._obs_names = obs_names
        self._digest: str | None = None
        self._lock = threading.RLock()
        self._columns: dict[str, SavedColumn] = {}
        self._loaded: tuple[Path, str] | None = None  # (file, its stat identity)
        self.message: str | None = None  # why a sidecar was set aside, for the user

    @property
    def version(self) -> str:
        """Changes whenever the saved columns do (keys ETags of their values)."""
        with self._lock:
            self._refresh()
            return self._loaded[1] if self._loaded else "none"

    def columns(self) -> list[SavedColumn]:
        with self._lock:
            self._refresh()
            return list(self._columns.values())

    def get(self, key: str) -> SavedColumn | None:
        with self._lock:
            self._refresh()
            return self._columns.get(key)

    def save(self, column: SavedColumn) -> None:
        """Add or replace one column."""
        with self._lock:
            self._refresh()
            columns = dict(self._columns)
            columns[column.key] = column
            self._write(columns)

    def delete(self, key: str) -> bool:
        with self._lock:
            self._refresh()
            if key not in self._columns:
                return False
            columns = dict(self._columns)
            del columns[key]
            self._write(columns)
            return True

    # -- reading -------------------------------------------------------------------------

    def _digest_now(self) -> str:
        if self._digest is None:
            self._digest = names_digest(self._obs_names())
        return self._digest

    def _existing(self) -> Path | None:
        return next((p for p in self.locations if p.is_file()), None)

    def _refresh(self) -> None:
        path = self._existing()
        if path is None:
            self._columns, self._loaded = {}, None
            return
        try:
            identity = _stat_identity(path)
        except OSError:
            self._columns, self._loaded = {}, None
            return
        if self._loaded == (path, identity):
            return
        try:
            self._columns = self._read(path)
            self._loaded = (path, identity)
        except (OSError, KeyError, ValueError, TypeError, IndexError, DatasetError) as exc:
            self._set_aside(path, exc)

    def _read(self, path: Path) -> dict[str, SavedColumn]:
        with h5py.File(path, "r") as h5:
            if int(h5.attrs.get("format", 0)) != FORMAT:
                raise DatasetError("it has an unknown format")
            n_cells = int(h5.attrs["n_cells"])
            digest = str(h5.attrs["obs_names_sha256"])
            if n_cells != self.n_cells or digest != self._digest_now():
                raise DatasetError(
                    f"it was saved for {'other cells' if n_cells == self.n_cells else f'{n_cells:,} cells'}"
                    f" (the dataset now has {self.n_cells:,})")
            order = [str(k) for k in decode_strings(np.asarray(h5.attrs["column-order"]))]
            columns = {}
            for key in order:
                element = h5["columns"][key]
                categories = [str(c) for c in read_strings(element["categories"])]
                codes = element["codes"][()].astype(np.int32)
                if codes.shape != (self.n_cells,) or codes.max(initial=-1) >= len(categories):
                    raise DatasetError(f"its column {key!r} is damaged")
                codes[codes < 0] = -1
                columns[key] = SavedColumn(key, categories, codes)
        return columns

    def _set_aside(self, path: Path, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        reason = str(exc) if isinstance(exc, DatasetError) else f"it cannot be read ({exc})"
        try:
            os.replace(path, aside)
            kept = (f"the file was kept, its name now ending in {aside.name[len(path.name):]}, "
                    "and new selections start empty")
        except OSError:
            kept = "the file was left in place and is ignored"
        log.warning("Saved selections %s set aside: %s", path, reason)
        # no file name: answers never name a local file (the log does)
        self.message = f"The saved selections of this dataset could not be used: {reason}; {kept}."
        self._columns, self._loaded = {}, None

    # -- writing -------------------------------------------------------------------------

    def _write(self, columns: dict[str, SavedColumn]) -> None:
        existing = self._existing()
        if not columns and existing is not None:  # the last column deleted: no sidecar left
            try:
                existing.unlink()
            except OSError as exc:
                raise DatasetError(f"The selection could not be deleted ({existing}: "
                                   f"{exc.strerror or exc})") from None
            self._columns, self._loaded = {}, None
            return
        body = self._encode(columns)
        targets = [existing] if existing is not None else self.locations
        errors = []
        for target in targets:
            try:
                atomic_write_bytes(target, body)
                self._columns = columns
                self._loaded = (target, _stat_identity(target))
                return
            except OSError as exc:
                errors.append(f"{target}: {exc.strerror or exc}")
        raise DatasetError("The selection could not be saved (" + "; ".join(errors) + ")")

    def _encode(self, columns: dict[str, SavedColumn]) -> bytes:
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as h5:
            h5.attrs["format"] = FORMAT
            h5.attrs["n_cells"] = self.n_cells
            h5.attrs["obs_names_sha256"] = self._digest_now()
            h5.attrs["written_by"] = f"cellucid-desktop {__version__}"
            h5.attrs["column-order"] = np.array(list(columns), dtype=h5py.string_dtype())
            group = h5.create_group("columns")
            for key, column in columns.items():
                write_categorical(group, key, Categorical(column.codes, column.categories))
        return buffer.getvalue()


def _stat_identity(path: Path) -> str:
    return stat_identity(os.stat(path))
