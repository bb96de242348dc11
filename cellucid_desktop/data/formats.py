"""What each format's open container becomes: the Layout that reads it as AnnData, and
for MuData the modality chosen. Shared by every transport (local files and stores,
remote ones), so a transport only has to produce the open container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import frame_length
from cellucid_desktop.data.layout import AnnDataLayout, Layout
from cellucid_desktop.data.loom import LoomLayout
from cellucid_desktop.data.mudata import ModalityLayout, default_modality, modality_names
from cellucid_desktop.data.nodes import child

MUDATA_KINDS = frozenset({"h5mu", "mudata-zarr"})


@dataclass(frozen=True)
class Container:
    """What a format's root says before any dataset is read from it."""

    modalities: tuple[str, ...] = ()
    modality: str | None = None
    counts: tuple[int | None, int | None] | None = None  # as cellucid's health reports


def describe(root: Any, kind: str, modality: str | None, label: str) -> Container:
    """Check ``root`` is usable as ``kind``; pick the MuData modality (default: the
    expression one). DatasetError with a sentence otherwise."""
    if kind in MUDATA_KINDS:
        names = modality_names(root, label)
        chosen = default_modality(names) if modality is None else modality
        if chosen not in names:
            raise DatasetError(f"{label} has no modality {modality!r}; it holds "
                               f"{', '.join(names)}")
        # cellucid reports a MuData's cells, and the default modality's features
        counts = (frame_length(root["obs"]),
                  frame_length(root[f"mod/{default_modality(names)}/var"]))
        return Container(tuple(names), chosen, counts)
    if modality is not None:
        raise DatasetError(f"{label} is not MuData, so it has no modality {modality!r}")
    if kind == "loom":
        LoomLayout(root, label, lambda: None)  # checks the matrix is there
        return Container(counts=(None, None))  # cellucid leaves loom to the browser
    _check_anndata(root, label)
    return Container()


def _check_anndata(root: Any, label: str) -> None:
    if child(root, "obs") is None or child(root, "var") is None:
        kind = "HDF5" if hasattr(root, "filename") else "a Zarr store"
        raise DatasetError(f"{label} is {kind} but not AnnData: it has no obs/var")


def open_layout(root: Any, kind: str, modality: str | None, label: str,
                close: Callable[[], None]) -> Layout:
    """The Layout reading ``root`` (an open h5py file or zarr group) as ``kind``; it owns
    ``close``. On failure ``close`` is called and DatasetError raised."""
    try:
        if kind == "loom":
            return LoomLayout(root, label, close)
        if kind in MUDATA_KINDS:
            modality_names(root, label)
            assert modality is not None
            return ModalityLayout(root, modality, close)
        _check_anndata(root, label)
        return AnnDataLayout(root, close)
    except BaseException:
        close()
        raise
