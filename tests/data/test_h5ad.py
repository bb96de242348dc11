"""The metadata reader on real files: anndata 0.6.22, 0.7.8, 0.9.2 (committed fixtures made
by tests/fixtures/make_legacy_fixtures.py) and 0.12 (written here), plus broken files."""

from __future__ import annotations

import io
import json
import sys
from importlib.metadata import version
from pathlib import Path

import anndata
import h5py
import numpy as np
import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.h5ad import AnnDataMeta, read_metadata
from cellucid_desktop.data.hdf5_file import open_hdf5
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.server.registry import read_meta

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))
import make_legacy_fixtures  # noqa: E402 - the same variants, written with anndata 0.12

LEGACY = sorted(FIXTURES.glob("anndata-*.h5ad"))
ENCODING_OF = {"0.6": "0.6", "0.7": "0.7", "0.9": "0.8+", "0.12": "0.8+"}


@pytest.fixture(scope="module")
def current_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The fixture variants written by the project's own anndata (0.12)."""
    folder = tmp_path_factory.mktemp("anndata-current")
    make_legacy_fixtures.main(str(folder))
    return sorted(folder.glob("*.h5ad"))


def read_path_metadata(path: Path) -> AnnDataMeta:
    """What registering the file reads: its source opened, then its metadata."""
    return read_meta(open_local(path))


def expected_facts(path: Path) -> dict:
    with h5py.File(path, "r") as h5:
        value = h5["uns/fixture"][()]
    value = value.reshape(-1)[0] if isinstance(value, np.ndarray) else value
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def described(path: Path) -> dict:
    meta = read_path_metadata(path)
    return {
        "n_cells": meta.n_cells, "n_genes": meta.n_genes,
        "x": meta.x.layout if meta.x else None,
        "raw_x": meta.raw_x.layout if meta.raw_x else None,
        "obsm": meta.obsm, "layers": {k: v.layout for k, v in meta.layers.items()},
        "columns": {c.name: c.kind for c in meta.obs_columns},
        "cellucid_id": meta.cellucid_id, "cellucid_name": meta.cellucid_name,
    }


def test_committed_fixtures_cover_three_old_anndata_generations() -> None:
    versions = {p.name.split("-")[1] for p in LEGACY}
    assert {"0.6.22", "0.7.8", "0.9.2"} <= versions
    assert all(p.stat().st_size < 200_000 for p in LEGACY)


@pytest.mark.parametrize("path", LEGACY, ids=lambda p: p.stem)
def test_metadata_of_files_written_by_old_anndata(path: Path) -> None:
    facts = expected_facts(path)
    got = described(path)
    assert got == {k: facts[k] for k in got}
    version = ".".join(facts["anndata"].split(".")[:2])
    assert read_path_metadata(path).encoding == ENCODING_OF[version]


def test_metadata_of_files_written_by_anndata_012(current_files: list[Path]) -> None:
    assert version("anndata").startswith("0.12")
    assert {p.name.split("-", 2)[2] for p in current_files} == {
        "full.h5ad", "csc-noobs.h5ad", "dense-nullable.h5ad", "no-x.h5ad", "zero-cells.h5ad"}
    for path in current_files:
        facts = expected_facts(path)
        got = described(path)
        assert got == {k: facts[k] for k in got}, path.name
        assert read_path_metadata(path).encoding == "0.8+"


def test_categorical_columns_report_their_category_count(current_files: list[Path]) -> None:
    full = next(p for p in current_files if p.name.endswith("-full.h5ad"))
    columns = {c.name: c for c in read_path_metadata(full).obs_columns}
    with h5py.File(full, "r") as h5:
        assert columns["cell_type"].n_categories == h5["obs/cell_type/categories"].shape[0]


def test_old_categoricals_report_their_category_count() -> None:
    for release in ("0.6.22", "0.7.8"):
        columns = {c.name: c for c in read_path_metadata(FIXTURES / f"anndata-{release}-full.h5ad").obs_columns}
        assert columns["cell_type"].n_categories == 3, release


class CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes HDF5 asks for."""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed with the object
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def readinto(self, buffer) -> int:
        n = self._fh.readinto(buffer)
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def test_metadata_is_read_without_reading_x_or_embeddings(tmp_path: Path) -> None:
    n_cells, n_genes = 4000, 300
    adata = anndata.AnnData(X=np.random.default_rng(0).random((n_cells, n_genes), dtype=np.float32))
    adata.obsm["X_umap"] = np.zeros((n_cells, 2), dtype=np.float32)
    adata.layers["counts"] = np.ones((n_cells, n_genes), dtype=np.float32)
    path = tmp_path / "dense.h5ad"
    adata.write_h5ad(path)
    source = CountingFile(path)
    h5 = open_hdf5(source, "the counting file")
    meta = read_metadata(h5)
    h5.close()
    source.close()
    assert (meta.n_cells, meta.n_genes, meta.x.layout) == (n_cells, n_genes, "dense")
    x_bytes = n_cells * n_genes * 4
    assert source.bytes_read < x_bytes // 20, f"read {source.bytes_read:,} bytes of a {x_bytes:,}-byte X"


# --- broken inputs: one plain sentence each -----------------------------------------

def _one_sentence(exc: DatasetError, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message and "Traceback" not in message
    assert str(path) in message
    return message


def test_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nope.h5ad"
    with pytest.raises(DatasetError) as err:
        read_path_metadata(path)
    assert "not found" in _one_sentence(err.value, path)


def test_directory_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as err:
        read_path_metadata(tmp_path)
    assert "folder" in _one_sentence(err.value, tmp_path)


def test_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5ad"
    path.write_bytes(b"")
    with pytest.raises(DatasetError) as err:
        read_path_metadata(path)
    assert "empty" in _one_sentence(err.value, path)


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"\x89PNG\r\n\x1a\n" + bytes(600), bytes(4096)])
def test_non_hdf5_file_is_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data.h5ad"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as err:
        read_path_metadata(path)
    assert "not an HDF5 file" in _one_sentence(err.value, path)


def test_hdf5_without_obs_and_var_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as h5:
        h5["matrix"] = np.zeros((3, 3))
    with pytest.raises(DatasetError) as err:
        read_path_metadata(path)
    assert "not AnnData" in _one_sentence(err.value, path)


@pytest.mark.parametrize("fraction", [0.002, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_reported(tmp_path: Path, small_h5ad: Path, fraction: float) -> None:
    data = small_h5ad.read_bytes()
    path = tmp_path / "cut.h5ad"
    path.write_bytes(data[: max(8, int(len(data) * fraction))])
    with pytest.raises(DatasetError) as err:
        read_path_metadata(path)
    assert "truncated" in _one_sentence(err.value, path)
