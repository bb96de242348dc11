"""The ranking and correction pieces checked against independent references: scipy's
rankdata on full columns (zeros included) and statsmodels' Benjamini-Hochberg."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata, tiecorrect
from statsmodels.stats.multitest import multipletests

from cellucid_desktop.data.diffexp import benjamini_hochberg
from cellucid_desktop.data.rank_table import ranks_over_all


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_ranks_over_stored_values_equal_ranks_of_the_full_columns(dtype):
    """Stored values only (explicit zeros among them), negatives, ties and empty genes;
    the unstored cells ranked as one block of zeros, as scipy ranks full columns."""
    rng = np.random.default_rng(5)
    n_cells, n_genes = 300, 7
    full = np.zeros((n_cells, n_genes))
    for g in range(n_genes - 1):  # the last gene stores nothing
        stored = rng.random(n_cells) < 0.4
        full[stored, g] = np.round(rng.normal(0.5, 2.0, stored.sum()), 1)  # ties, negatives
    rows, genes = np.nonzero(full != 0)
    zero_rows, zero_genes = np.nonzero(full[:, :-1] == 0)
    extra = rng.choice(zero_rows.size, 20, replace=False)  # explicit zeros stored too
    rows = np.concatenate([rows, zero_rows[extra]])
    genes = np.concatenate([genes, zero_genes[extra]])
    values = full[rows, genes].astype(dtype)
    shuffle = rng.permutation(values.size)
    rows, genes, values = rows[shuffle], genes[shuffle], values[shuffle]
    ranks, zero_rank, ties = ranks_over_all(n_genes, genes, values, n_cells)
    expected = np.column_stack([rankdata(full[:, g].astype(dtype)) for g in range(n_genes)])
    np.testing.assert_array_equal(ranks, expected[rows, genes])
    for g in range(n_genes):
        column = full[:, g].astype(dtype)
        assert zero_rank[g] == rankdata(column)[column == 0][0]
        # tiecorrect is 1 - sum(t^3 - t) / (n^3 - n)
        assert ties[g] == pytest.approx((1 - tiecorrect(rankdata(column))) * (n_cells ** 3 - n_cells))


def test_benjamini_hochberg_equals_statsmodels():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.random(500), rng.random(50) * 1e-6, [1.0, 1.0, 0.0]])
    rng.shuffle(p)
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1],
                               rtol=1e-12)


def test_a_t_test_sums_a_cell_stored_twice_as_scipy_does(tmp_path, serve):
    """A non-canonical CSR matrix (a cell's gene stored twice) tests like its sum."""
    from scipy import sparse

    from cellucid_desktop.data.h5ad_writer import Categorical, write_h5ad

    rng = np.random.default_rng(3)
    n_cells, n_genes = 200, 30
    dense = np.where(rng.random((n_cells, n_genes)) < 0.3,
                     rng.gamma(2, 1, (n_cells, n_genes)), 0).astype(np.float32)
    canonical = sparse.csr_matrix(dense)
    indptr, indices, data = [0], [], []
    for r in range(n_cells):  # each stored value as two halves, one after the other
        part = slice(canonical.indptr[r], canonical.indptr[r + 1])
        indices += [*canonical.indices[part], *canonical.indices[part]]
        data += [*(canonical.data[part] / 2), *(canonical.data[part] / 2)]
        indptr.append(len(indices))
    split = sparse.csr_matrix((np.array(data, np.float32), np.array(indices, np.int32),
                               np.array(indptr)), shape=dense.shape)
    obs = {"group": Categorical(np.arange(n_cells) % 2, ["a", "b"])}
    answers = []
    for name, matrix in (("canonical", canonical), ("twice", split)):
        path = write_h5ad(tmp_path / f"{name}.h5ad", obs_names=[f"c{i}" for i in range(n_cells)],
                          var_names=[f"g{j}" for j in range(n_genes)], obs=obs,
                          x_blocks=[(matrix.indptr, matrix.indices, matrix.data)])
        api, dataset_id = serve(path, dataset_id=name)
        answer = api.post(f"/datasets/{dataset_id}/diffexp", {
            "group": {"obs": "group", "value": "a"}, "n": n_genes})
        answers.append(answer.json()["genes"])
    for ours, summed in zip(answers[1], answers[0]):
        assert ours["name"] == summed["name"]
        assert ours["score"] == pytest.approx(summed["score"], rel=1e-6)
