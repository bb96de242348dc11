"""Differential expression through the real server agrees with scanpy's
``rank_genes_groups`` on the same data: same genes on top, same scores, fold changes and
p-values to rounding (scanpy stores scores and fold changes as float32)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from cellucid_desktop import paths
from cellucid_desktop.data import gene_index, matrix_scan, rank_table
from tests.analysis.data import N_HVG, pbmc_like, write

TOP = 25


def scanpy_table(adata: ad.AnnData, groupby: str, group: str, reference: str, method: str,
                 use_raw: bool, layer: str | None = None, tie_correct: bool = False,
                 ) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(adata, groupby, groups=[group], reference=reference,
                                method=method, use_raw=use_raw, layer=layer,
                                tie_correct=tie_correct, n_genes=adata.raw.n_vars)
    result = adata.uns["rank_genes_groups"]
    return pd.DataFrame({key: result[key][group] for key in
                         ("names", "scores", "logfoldchanges", "pvals", "pvals_adj")})


def assert_same_table(answer: dict, expected: pd.DataFrame) -> None:
    ours = pd.DataFrame(answer["genes"])
    assert list(ours["name"][:TOP]) == list(expected["names"][:TOP])
    theirs = expected.set_index("names").loc[ours["name"]]
    np.testing.assert_allclose(ours["score"], theirs["scores"], rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(ours["logfoldchange"].astype(float), theirs["logfoldchanges"],
                               rtol=2e-6, atol=2e-6)
    # p-values of large scores are steep functions of them: compare in log space
    np.testing.assert_allclose(np.log10(ours["pvalue"].clip(1e-300)),
                               np.log10(theirs["pvals"].clip(1e-300)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.log10(ours["pvalue_adj"].clip(1e-300)),
                               np.log10(theirs["pvals_adj"].clip(1e-300)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layout", ["csr", "csc", "dense"])
@pytest.mark.parametrize("method", ["t-test", "wilcoxon"])
def test_a_cluster_against_the_rest_matches_scanpy_on_x_and_raw(pbmc_files, serve, layout,
                                                                  method):
    api, dataset_id = serve(pbmc_files[layout])
    adata = ad.read_h5ad(pbmc_files[layout])
    for source, use_raw in (("X", False), ("raw", True)):
        answer = api.post(f"/datasets/{dataset_id}/diffexp", {
            "group": {"obs": "cluster", "value": "c2"}, "reference": "rest",
            "method": method, "n": 10_000, "source": source})
        assert answer.status == 200, answer.body
        document = answer.json()
        n_genes = adata.raw.n_vars if use_raw else adata.n_vars
        assert document["method"] == method and document["source"] == source
        assert len(document["genes"]) == n_genes
        assert document["n_group"] == int((adata.obs["cluster"] == "c2").sum())
        assert document["n_group"] + document["n_reference"] == adata.n_obs
        expected = scanpy_table(adata, "cluster", "c2", "rest", method, use_raw)
        assert_same_table(document, expected)


@pytest.mark.parametrize("method", ["t-test", "wilcoxon"])
def test_selected_cells_against_other_selected_cells_match_scanpy(pbmc, pbmc_files, serve,
                                                                   method):
    """Two selections of cells: scanpy compares them as two categories of a column."""
    api, dataset_id = serve(pbmc_files["csr"])
    rng = np.random.default_rng(4)
    picked = rng.permutation(pbmc.n_obs)
    group, reference = sorted(picked[:300].tolist()), sorted(picked[300:900].tolist())
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"cells": group}, "reference": {"cells": reference}, "method": method,
        "n": 50, "source": "raw"})
    assert answer.status == 200, answer.body
    adata = pbmc.copy()
    label = np.full(adata.n_obs, "other", dtype=object)
    label[group], label[reference] = "chosen", "versus"
    adata.obs["pick"] = pd.Categorical(label)
    document = answer.json()
    assert (document["n_group"], document["n_reference"]) == (300, 600)
    assert len(document["genes"]) == 50
    assert_same_table(document, scanpy_table(adata, "pick", "chosen", "versus", method, True))


@pytest.mark.parametrize("tie_correct", [False, True])
def test_wilcoxon_on_integer_counts_full_of_ties_matches_scanpy(pbmc, pbmc_files, serve,
                                                                tie_correct):
    api, dataset_id = serve(pbmc_files["csr"])
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"obs": "cluster", "value": "c4"}, "reference": {"obs": "cluster", "value": "c1"},
        "method": "wilcoxon", "n": N_HVG, "source": "layers/counts", "tie_correct": tie_correct})
    assert answer.status == 200, answer.body
    expected = scanpy_table(pbmc.copy(), "cluster", "c4", "c1", "wilcoxon", False,
                            layer="counts", tie_correct=tie_correct)
    assert_same_table(answer.json(), expected)


def test_fold_changes_use_the_log_base_scanpy_recorded(tmp_path, serve):
    adata = pbmc_like(seed=2, log_base=2)
    path = write(adata, tmp_path / "base2.h5ad")
    api, dataset_id = serve(path)
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"obs": "cluster", "value": "c0"}, "method": "t-test", "n": N_HVG})
    assert answer.status == 200, answer.body
    expected = scanpy_table(ad.read_h5ad(path), "cluster", "c0", "rest", "t-test", False)
    assert_same_table(answer.json(), expected)


@pytest.mark.parametrize("tie_correct", [False, True])
def test_wilcoxon_through_a_built_gene_index_and_its_ranks_matches_scanpy(
        pbmc, pbmc_files, serve, monkeypatch, tie_correct):
    """A CSR matrix too big to transpose in memory is read through its gene index (here
    the limits are lowered so the small file takes that path, with many runs and rank
    blocks). Against the rest, every gene is ranked once and kept; later groups only add
    up ranks. Against another group, the two groups' cells are ranked each time."""
    monkeypatch.setattr(matrix_scan, "RUN_VALUES", 10_000)
    monkeypatch.setattr(gene_index, "RUN_VALUES", 10_000)
    monkeypatch.setattr(rank_table, "BLOCK", 5_000)
    api, dataset_id = serve(pbmc_files["raw-counts"])
    adata = ad.read_h5ad(pbmc_files["raw-counts"])
    for group, reference in (("c3", "rest"), ("c1", "rest"), ("c2", "c4")):
        answer = api.post(f"/datasets/{dataset_id}/diffexp", {
            "group": {"obs": "cluster", "value": group},
            "reference": "rest" if reference == "rest" else {"obs": "cluster", "value": reference},
            "method": "wilcoxon", "n": N_HVG, "tie_correct": tie_correct})
        assert answer.status == 200, answer.body
        assert_same_table(answer.json(), scanpy_table(adata, "cluster", group, reference,
                                                      "wilcoxon", False,
                                                      tie_correct=tie_correct))
    assert api.get(f"/datasets/{dataset_id}/gene-index").json()["status"] == "ready"
    assert list(paths.cache_dir().glob("gene-index/*/ranks/genes.npz"))


@pytest.mark.parametrize("kind", ["negative and zero", "float64", "scaled dense"])
@pytest.mark.parametrize("method", ["t-test", "wilcoxon"])
def test_values_below_zero_and_float64_values_match_scanpy(pbmc, tmp_path, serve, kind,
                                                           method):
    """Ranks put the zeros a sparse matrix does not store between its negative and
    positive values; float64 values that float32 cannot hold take the exact sort."""
    from scipy import sparse

    adata = pbmc.copy()
    x = adata.X.copy()
    if kind == "negative and zero":
        x.data = x.data - 1.2  # a third of the stored values below zero, zeros unstored
        adata.X = x
    elif kind == "float64":
        x = x.astype(np.float64)
        x.data = x.data + np.random.default_rng(1).normal(0, 1e-9, x.data.size)
        adata.X = sparse.csr_matrix(x)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sc.pp.scale(adata, max_value=10)
    path = tmp_path / "values.h5ad"
    adata.write_h5ad(path)
    api, dataset_id = serve(path)
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"obs": "cluster", "value": "c5"}, "method": method, "n": N_HVG,
        "source": "X"})
    assert answer.status == 200, answer.body
    assert_same_table(answer.json(), scanpy_table(ad.read_h5ad(path), "cluster", "c5", "rest",
                                                  method, False))
