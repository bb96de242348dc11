"""The data readers (no server) against what anndata reads from the same files."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest

from cellucid_desktop.data.embeddings import preference
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.formats import open_layout
from cellucid_desktop.data.gene_index import BuildCancelled, GeneIndex, build_index
from cellucid_desktop.data.genes import GeneNames, UnknownGene, find_source, read_gene
from cellucid_desktop.data.h5ad_writer import write_h5ad
from cellucid_desktop.data.hdf5_file import open_hdf5
from cellucid_desktop.data.layout import Layout
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.data.obs import TooManyCategories
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.source import DatasetSource
from tests.data_api.expected import gene_reference, obs_reference
from tests.data_api.files import GENE_NAMES


class InMemorySource(DatasetSource):
    """An `.h5ad` opened on a Python file object, as remote files are: no positioned reads."""

    kind, label = "h5ad", "an in-memory copy"

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        self.location = f"memory:{path}"

    def identity(self) -> str:
        return "in-memory-copy"

    def open(self) -> Layout:
        h5 = open_hdf5(io.BytesIO(self.data), self.label)
        return open_layout(h5, self.kind, None, self.label, h5.close)


def local_reader(path: Path) -> DatasetReader:
    source = open_local(path)
    return DatasetReader(source, source.identity())


def fileobj_reader(path: Path) -> DatasetReader:
    return DatasetReader(InMemorySource(path), "in-memory-copy")


def test_embeddings_are_ordered_by_cellucid_preference_and_exclude_single_columns(ad_path):
    keys = [(e.key, e.dims, e.width) for e in local_reader(ad_path).embeddings()]
    assert keys == [("X_umap", 2, 2), ("X_umap_3d", 3, 3), ("X_tsne", 2, 2),
                    ("spatial", 2, 2), ("X_pca", 3, 12)]


@pytest.mark.parametrize("key,tier_before", [("X_tsne", "X_draw_graph_fa"),
                                             ("X_draw_graph_fr", "X_phate"),
                                             ("X_phate", "X_pacmap"), ("X_trimap", "spatial"),
                                             ("spatial", "X_diffmap"), ("X_diffmap", "X_custom"),
                                             ("X_custom", "X_scVI"), ("X_umap", "X_tsne")])
def test_embedding_preference_tiers_follow_cellucid_order(key, tier_before):
    assert preference(key) < preference(tier_before)


def test_embedding_values_equal_anndata_for_every_key(ad_path, adata):
    reader = local_reader(ad_path)
    for embedding in reader.embeddings():
        values = reader.embedding(embedding)
        expected = np.asarray(adata.obsm[embedding.key])[:, : embedding.dims]
        assert values.dtype == np.float32 and values.flags.c_contiguous
        np.testing.assert_array_equal(values, expected.astype(np.float32))


def test_every_obs_column_kind_equals_anndata_including_missing_values(ad_path, adata):
    reader = local_reader(ad_path)
    kinds = {c.name: c.kind for c in reader.meta.obs_columns}
    assert set(kinds) == set(adata.obs.columns)
    for key in adata.obs.columns:
        column = reader.obs_column(key)
        kind, values, categories = obs_reference(adata.obs[key])
        assert (column.kind, kinds[key]) == (kind, kind), key
        assert column.categories == categories, key
        np.testing.assert_array_equal(column.values, values, err_msg=key)
    described = reader.obs_column("cell_type").describe()
    assert described["n_missing"] == int(adata.obs["cell_type"].isna().sum()) > 0
    assert described["counts"][-1] == 0  # the unused category is listed with no cells


def test_string_column_with_too_many_distinct_values_is_refused(tmp_path):
    n = 65536
    path = write_h5ad(tmp_path / "wide.h5ad", obs_names=[f"c{i}" for i in range(n)],
                      var_names=["g0"], obs={"barcode": np.array([f"b{i}" for i in range(n)])})
    with pytest.raises(TooManyCategories, match="65,536"):
        local_reader(path).obs_column("barcode")


@pytest.mark.parametrize("opener", [local_reader, fileobj_reader])
@pytest.mark.parametrize("source", ["X", "raw", "layers/dense", "layers/spliced"])
def test_gene_vectors_equal_anndata_for_every_layout(ad_path, adata, opener, source):
    reader = opener(ad_path)
    src = find_source(reader.meta, source)
    names = GeneNames.read(reader, src)
    for name in ["Actb", "CD4", "G003", "GAPDH"] + (["R7"] if source == "raw" else []):
        np.testing.assert_array_equal(read_gene(reader, src, names.lookup(name)),
                                      gene_reference(adata, source, name), err_msg=name)


def test_legacy_encodings_read_like_the_values_written(legacy_07, legacy_06):
    for path, written in (legacy_07, legacy_06):
        reader = local_reader(path)
        embedding = reader.embeddings()[0]
        np.testing.assert_array_equal(reader.embedding(embedding), written["umap"])
        column = reader.obs_column(reader.meta.obs_columns[0].name)
        score = reader.obs_column("score")
        codes = written["codes"].astype(np.int64)
        np.testing.assert_array_equal(column.values, np.where(codes < 0, 65535, codes))
        assert column.categories == written["categories"]
        np.testing.assert_array_equal(score.values, written["score"].astype(np.float32))
        src = find_source(reader.meta, "X")
        for gene in range(written["x"].shape[1]):
            np.testing.assert_array_equal(read_gene(reader, src, gene), written["x"][:, gene])


def test_gene_lookup_is_case_sensitive_first_then_unique_case_insensitive():
    names = GeneNames(np.array(["CD4", "cd4", "Actb", "GAPDH"], dtype=object))
    assert names.lookup("cd4") == 1 and names.lookup("CD4") == 0
    assert names.lookup("gapdh") == 3
    with pytest.raises(UnknownGene, match="several genes"):
        names.lookup("Cd4")
    with pytest.raises(UnknownGene, match="no gene named"):
        names.lookup("nothing")


def test_gene_search_ranks_exact_then_prefix_then_substring_shorter_first():
    names = GeneNames(np.array(GENE_NAMES, dtype=object))
    found, total = names.search("cd4", 10)
    assert [g["name"] for g in found] == ["CD4", "CD40", "Cd44", "CD40LG", "xcd4x"]
    assert total == 5 and found[0]["index"] == GENE_NAMES.index("CD4")
    found, total = names.search("", 3)
    assert [g["name"] for g in found] == GENE_NAMES[:3] and total == len(GENE_NAMES)


@pytest.mark.parametrize("opener", [local_reader, fileobj_reader])
def test_built_index_gives_the_same_genes_as_the_scan_over_many_blocks(small_h5ad, tmp_path,
                                                                        opener):
    reader = opener(small_h5ad)
    src = find_source(reader.meta, "X")
    fractions: list[float] = []
    build_index(reader, src, tmp_path / "index", progress=fractions.append,
                block=5000)  # many runs: every gene is many pieces
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    index = GeneIndex(tmp_path / "index")
    for gene in range(src.info.shape[1]):
        values, stored = index.column(gene)
        np.testing.assert_array_equal(values, read_gene(reader, src, gene), err_msg=str(gene))
    assert not list(tmp_path.glob("*.tmp-*"))  # the temporary folder was renamed away


def test_index_build_stops_when_cancelled_and_leaves_nothing(small_h5ad, tmp_path):
    reader = local_reader(small_h5ad)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(BuildCancelled):
        build_index(reader, find_source(reader.meta, "X"), tmp_path / "index",
                    cancelled=cancelled, block=5000)
    assert list(tmp_path.iterdir()) == []


def test_closed_reader_refuses_reads_with_a_sentence(small_h5ad):
    reader = local_reader(small_h5ad)
    reader.meta
    reader.close()
    with pytest.raises(DatasetError, match="closed"):
        reader.embeddings()



def test_a_closed_file_stays_open_until_the_running_read_ends(tmp_path) -> None:
    import os

    from cellucid_desktop.data.errors import DatasetError
    from cellucid_desktop.data.flat_array import SharedFile
    from cellucid_desktop.fileio import PositionalFile

    path = tmp_path / "bytes.bin"
    path.write_bytes(b"0123456789")
    shared = SharedFile(PositionalFile.open(path))
    with shared.use() as file:
        shared.close()  # another thread closes the dataset mid-scan
        assert file.read(4, 2) == b"2345"  # the scan's descriptor is still valid
    with pytest.raises(OSError):
        os.fstat(file.fileno())  # closed once the scan finished
    with pytest.raises(DatasetError):
        with shared.use():
            pass
