"""The analyses on every other format the app opens (AnnData Zarr folders and zips,
MuData modalities, loom), written by their own libraries: differential expression
agrees with scanpy on what each library reads back, selections are saved beside the
store (one sidecar per MuData modality), tooltips and CSVs name the cells, and a copy
is refused with a sentence (it is written for .h5ad files)."""

from __future__ import annotations

import csv
import io
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc

from cellucid_desktop.data.annotations import SIDECAR_SUFFIX
from tests.analysis.test_diffexp_matches_scanpy import assert_same_table


def copied(case, folder: Path) -> Path:
    """A private copy of a case (its sidecar must not reach the shared fixtures)."""
    target = folder / case.path.name
    if case.path.is_dir():
        shutil.copytree(case.path, target)
    else:
        shutil.copy(case.path, target)
    return target


def scanpy_on(reference, group: np.ndarray, method: str) -> pd.DataFrame:
    adata = reference.copy()
    label = np.full(adata.n_obs, "rest", dtype=object)
    label[group] = "picked"
    adata.obs["pick"] = pd.Categorical(label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(adata, "pick", groups=["picked"], method=method,
                                use_raw=False, n_genes=adata.n_vars)
    result = adata.uns["rank_genes_groups"]
    return pd.DataFrame({key: result[key]["picked"] for key in
                         ("names", "scores", "logfoldchanges", "pvals", "pvals_adj")})


def test_every_format_compares_saves_and_names_its_cells(format_cases, serve, tmp_path):
    checked = 0
    for name, case in format_cases.items():
        reference = case.reference
        if reference.n_obs < 10 or reference.X is None:
            continue  # nothing to compare (tests/analysis/test_odd_files covers refusals)
        folder = tmp_path / name
        folder.mkdir()
        path = copied(case, folder)
        api, dataset_id = serve(path, dataset_id=f"d{checked}", modality=case.modality)
        base = f"/datasets/{dataset_id}"
        group = np.arange(0, reference.n_obs, 3)
        for method in ("t-test", "wilcoxon"):
            answer = api.post(f"{base}/diffexp", {"group": {"cells": group.tolist()},
                                                  "method": method, "n": reference.n_vars})
            assert answer.status == 200, (name, answer.body)
            assert_same_table(answer.json(), scanpy_on(reference, group, method))
        saved = api.post(f"{base}/annotations", {"key": "picked", "categories": {"a": [1, 4]}})
        assert saved.status == 200, (name, saved.body)
        stem = path.name + (f".{case.modality}" if case.modality else "")
        assert (folder / f"{stem}{SIDECAR_SUFFIX}").is_file(), name
        tooltip = api.get(f"{base}/cells/4?columns=picked").json()
        assert tooltip == {"row": 4, "name": str(reference.obs_names[4]), "obs": {"picked": "a"}}
        table = list(csv.reader(io.StringIO(api.post(f"{base}/cells.csv", {
            "cells": [1, 2], "columns": ["picked"]}).body.decode())))
        assert table == [["barcode", "picked"], [str(reference.obs_names[1]), "a"],
                         [str(reference.obs_names[2]), ""]]
        refused = api.get(f"{base}/export.h5ad")
        if case.kind != "h5ad":
            assert refused.status == 422 and ".h5ad" in refused.json()["error"], name
        checked += 1
    assert checked >= 15
