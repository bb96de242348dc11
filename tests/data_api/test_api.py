"""The data API through the real server (waitress on port 0), checked against anndata."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from cellucid_desktop.data.h5ad_writer import write_h5ad
from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.expected import gene_reference, obs_reference
from tests.data_api.conftest import q
from tests.data_api.files import N_CELLS, N_GENES


def test_dataset_document_lists_embeddings_obs_and_sources(ad_path, start_api):
    registry = DatasetRegistry()  # a server of its own: no gene was asked for yet
    dataset = registry.add(ad_path, dataset_id="ad-test")
    api = start_api(registry)
    listing = api.get("/datasets").json()
    document = api.get(f"/datasets/{dataset.id}").json()
    assert listing == {"datasets": [document]}
    assert {k: document[k] for k in ("id", "n_cells", "n_genes", "default_embedding",
                                     "default_source")} == {
        "id": "ad-test", "n_cells": N_CELLS, "n_genes": N_GENES,
        "default_embedding": "X_umap", "default_source": "X"}
    assert document["embeddings"][0] == {"key": "X_umap", "dims": 2, "width": 2}
    assert {"key": "X_pca", "dims": 3, "width": 12} in document["embeddings"]
    assert "X_one" not in {e["key"] for e in document["embeddings"]}
    kinds = {o["key"]: (o["kind"], o["n_categories"]) for o in document["obs"]}
    assert kinds["cell_type"] == ("categorical", 5) and kinds["score"] == ("continuous", None)
    assert kinds["is_doublet"] == ("boolean", 2) and kinds["barcode"] == ("string", None)
    assert document["expression_sources"] == [
        {"id": "X", "label": "X", "layout": "csr"},
        {"id": "raw", "label": "raw.X", "layout": "csc"},
        {"id": "layers/dense", "label": "layer dense", "layout": "dense"},
        {"id": "layers/spliced", "label": "layer spliced", "layout": "csc"}]
    assert document["gene_index"] == {"status": "none", "progress": 0.0, "message": None}


def test_embedding_bytes_are_float32_rows_of_the_first_dims_columns(ad_api, adata):
    api, dataset = ad_api
    for key, dims in (("X_umap", 2), ("X_umap_3d", 3), ("X_pca", 3), ("X_tsne", 2)):
        answer = api.get(f"/datasets/{dataset.id}/embeddings/{key}")
        assert answer.status == 200 and answer.headers["x-dims"] == str(dims)
        assert answer.headers["content-type"] == "application/octet-stream"
        values = np.frombuffer(answer.body, dtype="<f4").reshape(N_CELLS, dims)
        np.testing.assert_array_equal(values, np.asarray(adata.obsm[key])[:, :dims].astype(np.float32))


def test_obs_meta_and_values_equal_anndata_for_every_column(ad_api, adata):
    api, dataset = ad_api
    for key in adata.obs.columns:
        meta = api.get(f"/datasets/{dataset.id}/obs/{q(key)}").json()
        answer = api.get(f"/datasets/{dataset.id}/obs/{q(key)}/values")
        kind, expected, categories = obs_reference(adata.obs[key])
        assert (meta["key"], meta["kind"], meta["categories"]) == (key, kind, categories)
        values = np.frombuffer(answer.body, dtype="<u2" if meta["dtype"] == "uint16" else "<f4")
        np.testing.assert_array_equal(values, expected, err_msg=key)
        if meta["dtype"] == "uint16":
            present = expected[expected != 65535]
            assert meta["counts"] == np.bincount(present, minlength=len(categories)).tolist()
            assert meta["n_missing"] == int((expected == 65535).sum())
        else:
            assert meta["min"] == pytest.approx(float(np.nanmin(expected)))
            assert meta["max"] == pytest.approx(float(np.nanmax(expected)))
            assert meta["n_missing"] == int(np.isnan(expected).sum())


@pytest.mark.parametrize("source", ["X", "raw", "layers/dense", "layers/spliced"])
def test_gene_vectors_equal_anndata_with_index_and_range_headers(ad_api, adata, source):
    api, dataset = ad_api
    for name in ("CD4", "Actb", "G010"):
        answer = api.get(f"/datasets/{dataset.id}/genes/{name}?source={q(source)}")
        assert answer.status == 200, answer.body
        values = np.frombuffer(answer.body, dtype="<f4")
        expected = gene_reference(adata, source, name)
        np.testing.assert_array_equal(values, expected)
        names = list(adata.raw.var_names if source == "raw" else adata.var_names)
        assert answer.headers["x-gene-index"] == str(names.index(name))
        assert float(answer.headers["x-min"]) == float(expected.min())
        assert float(answer.headers["x-max"]) == float(expected.max())


def test_gene_lookup_falls_back_to_a_unique_case_insensitive_match(ad_api, adata):
    api, dataset = ad_api
    answer = api.get(f"/datasets/{dataset.id}/genes/gapdh")
    np.testing.assert_array_equal(np.frombuffer(answer.body, dtype="<f4"),
                                  gene_reference(adata, "X", "GAPDH"))


def test_gene_search_ranks_matches_and_reports_the_total(ad_api):
    api, dataset = ad_api
    found = api.get(f"/datasets/{dataset.id}/genes?q=cd4&limit=3").json()
    assert found == {"genes": [{"name": "CD4", "index": 1}, {"name": "CD40", "index": 2},
                               {"name": "Cd44", "index": 4}], "total": 5}
    raw = api.get(f"/datasets/{dataset.id}/genes?q=r1&source=raw").json()
    assert [g["name"] for g in raw["genes"]] == ["R1", "R10", "R11", "R12", "R13", "R14"]
    first = api.get(f"/datasets/{dataset.id}/genes?limit=2").json()
    assert first == {"genes": [{"name": "Actb", "index": 0}, {"name": "CD4", "index": 1}],
                     "total": N_GENES}


def test_payloads_carry_strong_etags_and_answer_304(ad_api):
    api, dataset = ad_api
    for path in (f"/datasets/{dataset.id}/embeddings/X_umap",
                 f"/datasets/{dataset.id}/obs/cell_type/values",
                 f"/datasets/{dataset.id}/genes/CD4?source=raw"):
        first = api.get(path)
        etag = first.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        again = api.get(path, {"If-None-Match": etag})
        assert (again.status, again.body, again.headers["etag"]) == (304, b"", etag)
        assert api.get(path, {"If-None-Match": '"other"'}).status == 200
    tags = {api.get(f"/datasets/{dataset.id}/genes/{g}").headers["etag"] for g in ("CD4", "CD40")}
    assert len(tags) == 2


def test_category_codes_are_gzipped_when_the_client_accepts_it(ad_api):
    api, dataset = ad_api
    path = f"/datasets/{dataset.id}/obs/cell_type/values"
    plain = api.get(path)
    packed = api.get(path, {"Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert packed.headers["etag"] != plain.headers["etag"]
    again = api.get(path, {"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]})
    assert (again.status, again.headers["etag"]) == (304, packed.headers["etag"])


@pytest.mark.parametrize("path,status,words", [
    ("/datasets/nope", 404, "No dataset"),
    ("/datasets/ad-test/embeddings/X_nope", 404, "no embedding"),
    ("/datasets/ad-test/embeddings/X_one", 404, "no embedding"),
    ("/datasets/ad-test/obs/nope", 404, "no obs column"),
    ("/datasets/ad-test/obs/nope/values", 404, "no obs column"),
    ("/datasets/ad-test/genes/NOPE", 404, "no gene"),
    ("/datasets/ad-test/genes/CD4?source=layers/nope", 404, "no expression source"),
    ("/datasets/ad-test/genes?q=a&limit=many", 400, "limit"),
    ("/nothing-here", 404, "no route"),
])
def test_errors_are_json_sentences(ad_api, path, status, words):
    api, _ = ad_api
    answer = api.get(path)
    assert answer.status == status
    assert words in answer.json()["error"]


def test_obs_key_with_a_slash_is_reached_percent_encoded(ad_api, adata):
    api, dataset = ad_api
    meta = api.get(f"/datasets/{dataset.id}/obs/{q('sample/group')}").json()
    assert meta["key"] == "sample/group" and meta["categories"] == ["s1", "s2"]
    values = api.get(f"/datasets/{dataset.id}/obs/{q('sample/group')}/values").body
    np.testing.assert_array_equal(np.frombuffer(values, dtype="<u2"),
                                  obs_reference(adata.obs["sample/group"])[1])


def test_column_with_too_many_distinct_strings_is_refused_with_422(tmp_path, start_api):
    n = 65536
    path = write_h5ad(tmp_path / "wide.h5ad", obs_names=[f"c{i}" for i in range(n)],
                      var_names=["g0"], obs={"barcode": np.array([f"b{i}" for i in range(n)])})
    registry = DatasetRegistry()
    dataset = registry.add(path)
    answer = start_api(registry).get(f"/datasets/{dataset.id}/obs/barcode/values")
    assert answer.status == 422
    assert "more than the 65,534 that can be coloured by" in answer.json()["error"]


def test_legacy_files_are_served_like_new_ones(legacy_07, legacy_06, start_api):
    registry = DatasetRegistry()
    ids = [registry.add(path).id for path, _ in (legacy_07, legacy_06)]
    api = start_api(registry)
    for dataset_id, (_, written) in zip(ids, (legacy_07, legacy_06)):
        document = api.get(f"/datasets/{dataset_id}").json()
        key = document["obs"][0]["key"]
        codes = np.frombuffer(api.get(f"/datasets/{dataset_id}/obs/{key}/values").body, "<u2")
        expected = written["codes"].astype(np.int64)
        np.testing.assert_array_equal(codes, np.where(expected < 0, 65535, expected))
        umap = np.frombuffer(api.get(f"/datasets/{dataset_id}/embeddings/X_umap").body, "<f4")
        np.testing.assert_array_equal(umap.reshape(-1, 2), written["umap"])
        gene = np.frombuffer(api.get(f"/datasets/{dataset_id}/genes/g3").body, "<f4")
        np.testing.assert_array_equal(gene, written["x"][:, 3])
