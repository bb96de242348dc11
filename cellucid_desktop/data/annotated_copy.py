"""A copy of a dataset with its saved selections added as obs columns.

The file's bytes are copied as they are (every element, attribute and encoding kept),
then the new columns are added to the copy's ``obs`` in the encoding the file already
uses, so anndata reads the copy like the original plus categorical columns:

* 0.8+: an AnnData ``categorical`` group per column, named in ``column-order``;
* 0.7: integer codes whose ``categories`` attribute references a string dataset under
  ``obs/__categories``, named in ``column-order``;
* 0.6: a new integer field in the compound ``obs`` dataset (rewritten) and the category
  names in ``uns/<key>_categories``.

The copy is written under a temporary name next to the target and renamed into place
only when complete, so a failed or cancelled export leaves no half file.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import h5py
import numpy as np

from cellucid_desktop.atomic_files import replacing
from cellucid_desktop.data.annotations import (AnnotationStore, SavedColumn,
                                               annotation_locations)
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import dataframe_columns, read_metadata
from cellucid_desktop.data.h5ad_writer import Categorical, write_categorical
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.source import FORMAT_LABELS, DatasetSource

CHUNK = 16 << 20
_STR = h5py.string_dtype("utf-8")


def write_annotated_copy(source: BinaryIO, size: int, target: Path,
                         columns: list[SavedColumn], *, mode_of: Path | None = None) -> None:
    """Copy ``source`` (``size`` bytes, read from its current position) to ``target``
    with ``columns`` added to obs. Raises DatasetError or OSError."""
    with replacing(target, mode_of=mode_of) as tmp:
        with open(tmp, "wb") as out:
            copied = 0
            while copied < size:
                chunk = source.read(min(CHUNK, size - copied))
                if not chunk:
                    raise DatasetError("The dataset ended early while it was copied; it may "
                                       "have changed on disk. Try again.")
                out.write(chunk)
                copied += len(chunk)
        add_columns(tmp, columns)


def copy_dataset(source: DatasetSource, columns: list[SavedColumn], target: Path) -> None:
    """Copy a single-file ``.h5ad`` dataset to ``target`` with ``columns`` added."""
    raw = source.raw_file() if source.kind == "h5ad" else None
    if raw is None:
        raise DatasetError(f"A copy with saved selections can be written for .h5ad files; "
                           f"this dataset is {FORMAT_LABELS.get(source.kind, source.kind)}")
    if source.local_path is not None and target.resolve() == source.local_path.resolve():
        raise DatasetError(f"{target.name} is the dataset itself; choose another name for "
                           "the copy")
    handle, size = raw
    with handle:
        write_annotated_copy(handle, size, target, columns, mode_of=source.local_path)


def copy_with_selections(source: DatasetSource, target: Path) -> int:
    """Copy a dataset to ``target`` with the selections saved for it (wherever the
    server keeps them) added; the number of columns added."""
    reader = DatasetReader(source, source.identity())
    try:
        columns = AnnotationStore(annotation_locations(source), reader.meta.n_cells,
                                  reader.obs_names).columns()
    finally:
        reader.close()
    copy_dataset(source, columns, target)
    return len(columns)


def add_columns(path: Path, columns: list[SavedColumn]) -> None:
    """Add ``columns`` to the obs of the ``.h5ad`` at ``path`` in its own encoding."""
    with h5py.File(path, "r+") as h5:
        encoding = read_metadata(h5).encoding
        existing = set(dataframe_columns(h5["obs"]))
        for column in columns:
            if column.key in existing:
                raise DatasetError(f"The dataset already has an obs column named "
                                   f"{column.key!r}; rename the saved selection to export it")
        if encoding == "0.6":
            _add_to_compound(h5, columns)
            return
        obs = h5["obs"]
        for column in columns:
            if encoding == "0.7":
                _add_07(obs, column)
            else:
                write_categorical(obs, column.key, Categorical(column.codes, column.categories))
        order = [str(k) for k in dataframe_columns(obs) if k not in
                 {c.key for c in columns}] + [c.key for c in columns]
        obs.attrs["column-order"] = np.array(order, dtype=_STR)


def _code_dtype(n_categories: int) -> type:
    return np.int8 if n_categories < 127 else np.int16 if n_categories < 32767 else np.int32


def _add_07(obs: h5py.Group, column: SavedColumn) -> None:
    """0.7: codes carry an HDF5 reference to their categories in ``__categories``."""
    holder = obs.require_group("__categories")
    names = holder.create_dataset(column.key, data=np.array(column.categories, dtype=_STR))
    codes = obs.create_dataset(column.key,
                               data=column.codes.astype(_code_dtype(len(column.categories))))
    codes.attrs["categories"] = names.ref


def _add_to_compound(h5: h5py.File, columns: list[SavedColumn]) -> None:
    """0.6: obs is one compound dataset; it is rewritten with a field per new column."""
    old = h5["obs"][()]
    fields = [(name, old.dtype.fields[name][0]) for name in old.dtype.names]
    fields += [(c.key, _code_dtype(len(c.categories))) for c in columns]
    new = np.empty(old.shape, dtype=np.dtype(fields))
    for name in old.dtype.names:
        new[name] = old[name]
    for column in columns:
        new[column.key] = column.codes
        h5.create_dataset(f"uns/{column.key}_categories",
                          data=np.array(column.categories, dtype=_STR))
    del h5["obs"]
    h5.create_dataset("obs", data=new)
