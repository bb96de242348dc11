"""Every part of a served dataset against a reference AnnData (what anndata, mudata or
loompy read from the same file): counts, embeddings, obs columns, genes of every
expression source (by scan or column, then through the gene index once built)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from cellucid_desktop.data.obs import MAX_CATEGORIES
from cellucid_desktop.server.registry import Dataset
from tests.data_api.conftest import Api, q
from tests.data_api.expected import matrix_column, obs_reference
from tests.helpers import wait_for

GENES_PER_SOURCE = 4


def _matrix(reference: ad.AnnData, source: str):
    if source == "X":
        return reference.X, list(reference.var_names)
    if source == "raw":
        return reference.raw.X, list(reference.raw.var_names)
    return reference.layers[source.removeprefix("layers/")], list(reference.var_names)


def _expected_embeddings(reference: ad.AnnData) -> set[str]:
    return {key for key, value in reference.obsm.items()
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] >= 2
            and value.dtype.kind in "iuf"}


def _check_obs(api: Api, base: str, ds: dict, reference: ad.AnnData) -> None:
    assert [c["key"] for c in ds["obs"]] == list(reference.obs.columns)
    for column in ds["obs"]:
        series = reference.obs[column["key"]]
        meta = api.get(f"{base}/obs/{q(column['key'])}")
        values = api.get(f"{base}/obs/{q(column['key'])}/values")
        if isinstance(series.dtype, pd.CategoricalDtype) and \
                len(series.cat.categories) > MAX_CATEGORIES:
            assert (meta.status, values.status) == (422, 422), column
            assert "pick another column" in meta.json()["error"]
            continue
        assert meta.status == 200 and values.status == 200, (column, meta.body, values.body)
        kind, expected, categories = obs_reference(series)
        described = meta.json()
        assert (described["kind"], column["kind"]) == (kind, kind), column
        assert described["categories"] == categories, column
        served = np.frombuffer(values.body, dtype="<u2" if categories is not None else "<f4")
        np.testing.assert_array_equal(served, expected, err_msg=column["key"])
        if categories is None:
            finite = expected[np.isfinite(expected)]
            assert described["min"] == (float(finite.min()) if finite.size else None)
            assert described["n_missing"] == int(np.isnan(expected).sum())


def _check_gene(api: Api, base: str, source: str, name: str, names: list[str], matrix) -> None:
    answer = api.get(f"{base}/genes/{q(name)}?source={q(source)}")
    assert answer.status == 200, (source, name, answer.body)
    index = int(answer.headers["x-gene-index"])
    assert index == names.index(name)
    expected = matrix_column(matrix, index)
    np.testing.assert_allclose(np.frombuffer(answer.body, dtype="<f4"), expected, rtol=1e-6,
                               err_msg=f"{source} {name}")
    finite = expected[np.isfinite(expected)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    assert (float(answer.headers["x-min"]), float(answer.headers["x-max"])) == (low, high)


def _check_genes(api: Api, base: str, ds: dict, reference: ad.AnnData) -> None:
    """A few genes of every source, by scan or column; then, once the default source's
    gene index is built, the same genes again through the index."""
    picked = {}
    for source in ds["expression_sources"]:
        matrix, names = _matrix(reference, source["id"])
        listed = api.get(f"{base}/genes?limit=1000&source={q(source['id'])}")
        assert listed.status == 200, listed.body
        assert [g["name"] for g in listed.json()["genes"]] == names
        picks = list(dict.fromkeys(names[:GENES_PER_SOURCE] + names[-1:]))
        picks += [n for n in names if not n.isascii() or " " in n or "/" in n]
        picked[source["id"]] = [n for n in picks if n]  # an empty name has no path of its own
        for name in picked[source["id"]]:
            _check_gene(api, base, source["id"], name, names, matrix)
    status = wait_for(lambda: api.get(f"{base}/gene-index").json()["status"] != "building",
                      timeout=60, what="the gene index") and api.get(f"{base}/gene-index").json()
    if not ds["expression_sources"]:
        assert status["status"] == "none"
        return
    assert status["status"] == "ready", status
    default = ds["default_source"]
    matrix, names = _matrix(reference, default)
    for name in picked[default]:
        _check_gene(api, base, default, name, names, matrix)


def check_served(api: Api, dataset: Dataset, reference: ad.AnnData) -> dict:
    """Describe, embeddings, obs and genes of ``dataset`` equal ``reference``'s; the
    description is returned for further checks."""
    base = f"/datasets/{q(dataset.id)}"
    described = api.get(base)
    assert described.status == 200, described.body
    ds = described.json()
    assert (ds["n_cells"], ds["n_genes"]) == reference.shape
    assert {e["key"] for e in ds["embeddings"]} == _expected_embeddings(reference)
    for emb in ds["embeddings"]:
        answer = api.get(f"{base}/embeddings/{q(emb['key'])}")
        assert answer.status == 200, answer.body
        expected = np.asarray(reference.obsm[emb["key"]][:, :emb["dims"]], dtype=np.float32)
        served = np.frombuffer(answer.body, dtype="<f4").reshape(-1, emb["dims"])
        np.testing.assert_array_equal(served, expected, err_msg=emb["key"])
    _check_obs(api, base, ds, reference)
    _check_genes(api, base, ds, reference)
    return ds
