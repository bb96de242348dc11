"""Cells (barcodes CSV of a selection, tooltips), gene sets (mean, scanpy's module score)
and the annotated copy, through the real server, checked against anndata and scanpy."""

from __future__ import annotations

import csv
import io
import shutil
import warnings
from pathlib import Path
from urllib.parse import unquote

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

from cellucid_desktop import paths
from tests.helpers import wait_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def test_cells_csv_lists_barcodes_and_columns_of_the_selection(pbmc, pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csr"])
    api.post(f"/datasets/{dataset_id}/annotations", {"key": "sel", "categories": {"x": [7]}})
    rows = [900, 7, 3, 7, 2399]
    answer = api.post(f"/datasets/{dataset_id}/cells.csv", {
        "cells": rows, "columns": ["cluster", "pct_mito", "is_doublet", "sel"]})
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="pbmc-cells.csv"' in answer.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(answer.body.decode())))
    assert table[0] == ["barcode", "cluster", "pct_mito", "is_doublet", "sel"]
    expected = []
    for row in sorted(set(rows)):  # each cell once, in row order
        cell = pbmc.obs.iloc[row]
        expected.append([pbmc.obs_names[row], cell["cluster"],
                         format(float(cell["pct_mito"]), ".7g"), str(bool(cell["is_doublet"])),
                         "x" if row == 7 else ""])
    assert table[1:] == expected


def test_cells_csv_of_every_cell_streams_them_all(pbmc, pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["dense"])
    answer = api.post(f"/datasets/{dataset_id}/cells.csv",
                      {"cells": list(range(pbmc.n_obs)), "columns": ["sample"]})
    table = list(csv.reader(io.StringIO(answer.body.decode())))
    assert [r[0] for r in table[1:]] == list(pbmc.obs_names)
    assert [r[1] for r in table[1:]] == list(pbmc.obs["sample"].astype(str))
    bad = api.post(f"/datasets/{dataset_id}/cells.csv", {"cells": [1], "columns": ["nope"]})
    assert bad.status == 404 and "nope" in bad.json()["error"]


def test_tooltip_gives_the_barcode_and_the_cells_values(pbmc, pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csc"])
    api.post(f"/datasets/{dataset_id}/annotations", {"key": "sel", "categories": {"x": [11]}})
    answer = api.get(f"/datasets/{dataset_id}/cells/11").json()
    cell = pbmc.obs.iloc[11]
    assert answer == {"row": 11, "name": pbmc.obs_names[11], "obs": {
        "cluster": cell["cluster"], "sample": cell["sample"],
        "is_doublet": str(bool(cell["is_doublet"])),
        "pct_mito": pytest.approx(float(cell["pct_mito"])), "sel": "x"}}
    some = api.get(f"/datasets/{dataset_id}/cells/12?columns=sample,sel").json()
    assert some["obs"] == {"sample": pbmc.obs["sample"].iloc[12], "sel": None}
    assert api.get(f"/datasets/{dataset_id}/cells/{pbmc.n_obs}").status == 404
    assert api.get(f"/datasets/{dataset_id}/cells/1?columns=nope").status == 404


def gene_set(api, dataset_id: str, body: dict):
    answer = api.post(f"/datasets/{dataset_id}/gene-set", body)
    assert answer.status == 200, answer.body
    return np.frombuffer(answer.body, dtype="<f4"), answer.headers


@pytest.mark.parametrize("layout", ["csr", "csc", "dense"])
def test_gene_set_mean_is_the_mean_of_its_genes(pbmc, pbmc_files, serve, layout):
    api, dataset_id = serve(pbmc_files[layout])
    values, headers = gene_set(api, dataset_id, {
        "genes": ["GENE3", "gene7", "NOPE", "GENE3", "GENE250"], "method": "mean",
        "source": "raw"})
    expected = np.asarray(pbmc.raw[:, ["GENE3", "GENE7", "GENE250"]].X.mean(axis=1)).ravel()
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-7)
    assert [unquote(g) for g in headers["x-genes-used"].split(",")] == ["GENE3", "GENE7",
                                                                        "GENE250"]
    assert headers["x-genes-missing"] == "NOPE"
    assert float(headers["x-min"]) == pytest.approx(values.min())
    assert float(headers["x-max"]) == pytest.approx(values.max())
    assert "X-Genes-Used" in headers["access-control-expose-headers"]


@pytest.mark.parametrize("layout", ["csr", "csc", "dense"])
@pytest.mark.parametrize("genes", [["GENE1", "GENE5", "GENE77", "GENE150"], ["GENE10"],
                                   [f"GENE{i}" for i in range(0, 200, 7)]])
def test_gene_set_score_is_scanpys_score_genes(pbmc, pbmc_files, serve, layout, genes):
    """scanpy's defaults: 50 control genes per expression bin, 25 bins, seed 0."""
    api, dataset_id = serve(pbmc_files[layout])
    values, headers = gene_set(api, dataset_id, {"genes": genes, "method": "score",
                                                 "source": "X"})
    adata = ad.read_h5ad(pbmc_files[layout])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.score_genes(adata, genes, use_raw=False)
    np.testing.assert_allclose(values, adata.obs["score"].to_numpy(), rtol=1e-5, atol=1e-6)
    assert int(headers["x-control-genes"]) > 0


def test_gene_set_of_unknown_genes_is_refused(pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csr"])
    answer = api.post(f"/datasets/{dataset_id}/gene-set", {"genes": ["NOPE1", "NOPE2"]})
    assert answer.status == 404 and "NOPE1" in answer.json()["error"]
    assert api.post(f"/datasets/{dataset_id}/gene-set", {"genes": []}).status == 400


@pytest.mark.parametrize("fixture", ["anndata-0.6.22-full.h5ad", "anndata-0.7.8-full.h5ad",
                                     "anndata-0.9.2-full.h5ad"])
def test_exported_copy_is_the_dataset_plus_the_saved_columns(fixture, serve, tmp_path):
    """Each AnnData generation gets the new columns in its own encoding; anndata reads
    the copy as the original plus categorical columns, and the original is untouched."""
    path = Path(shutil.copy(FIXTURES / fixture, tmp_path / fixture))
    original = path.read_bytes()
    api, dataset_id = serve(path)
    before = ad.read_h5ad(path)
    n = before.n_obs
    api.post(f"/datasets/{dataset_id}/annotations",
             {"key": "picked", "categories": {"yes": list(range(0, n, 2)), "no": [1]}})
    api.post(f"/datasets/{dataset_id}/annotations", {"key": "other", "categories": {"z": [3]}})
    answer = api.get(f"/datasets/{dataset_id}/export.h5ad")
    assert answer.status == 200
    assert f'filename="{dataset_id}-annotated.h5ad"' in answer.headers["content-disposition"]
    copy = tmp_path / "copy.h5ad"
    copy.write_bytes(answer.body)
    after = ad.read_h5ad(copy)
    assert list(after.obs.columns) == list(before.obs.columns) + ["picked", "other"]
    expected = np.full(n, None, dtype=object)
    expected[0::2], expected[1] = "yes", "no"
    assert after.obs["picked"].astype(object).where(after.obs["picked"].notna(), None
                                                    ).tolist() == expected.tolist()
    assert list(after.obs["picked"].cat.categories) == ["yes", "no"]
    for column in before.obs.columns:
        assert after.obs[column].astype(str).tolist() == before.obs[column].astype(str).tolist()
    assert (after.obs_names == before.obs_names).all()
    assert path.read_bytes() == original
    wait_for(lambda: not list(paths.cache_dir().rglob("export-*.h5ad")), 10,
             what="the temporary copy deleted once sent")
    # the copy opens in the viewer too, its new columns as ordinary ones
    api2, copy_id = serve(copy, dataset_id="copy")
    kinds = {o["key"]: o["kind"] for o in api2.get(f"/datasets/{copy_id}").json()["obs"]}
    assert kinds["picked"] == "categorical" and "annotation" not in str(kinds)


def test_a_local_copy_refuses_to_overwrite_its_dataset(pbmc_files, tmp_path):
    from cellucid_desktop.data.annotated_copy import copy_with_selections
    from cellucid_desktop.data.errors import DatasetError
    from cellucid_desktop.data.local_source import open_local

    path = Path(shutil.copy(pbmc_files["csr"], tmp_path / "data.h5ad"))
    with pytest.raises(DatasetError, match="the dataset itself"):
        copy_with_selections(open_local(path), tmp_path / "." / "data.h5ad")
    assert copy_with_selections(open_local(path), tmp_path / "plain.h5ad") == 0  # none saved
    assert ad.read_h5ad(tmp_path / "plain.h5ad").obs.equals(ad.read_h5ad(path).obs)
