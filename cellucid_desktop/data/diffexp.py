"""Differential expression of one group of cells against a reference, as scanpy does it.

The statistics are scanpy 1.11's ``rank_genes_groups`` (``tl/_rank_genes_groups.py``),
computed in bounded passes over the stored values instead of on a matrix in memory:

* **means and variances** per gene and group from sums and sums of squares (variance
  with the n-1 denominator), as scanpy's ``_get_mean_var``;
* **t-test**: Welch's t from those (scipy's ``ttest_ind_from_stats(equal_var=False)``:
  Welch-Satterthwaite degrees of freedom, 1 where they are undefined), two-sided
  p-value ``2 * stdtr(df, -|t|)``; a NaN score becomes 0 and its p-value 1;
* **Wilcoxon rank-sum**: the group's rank sum among the cells of both groups (ties get
  their average rank), z = (R - n1 (N + 1) / 2) / sqrt(n1 n2 (N + 1) / 12), optionally
  tie-corrected (scanpy's ``tie_correct``, off by default), p-value ``2 * ndtr(-|z|)``.
  Ranks are computed per gene over the stored non-zero values only: the cells with no
  stored value form one tied block of zeros placed between the negative and the
  positive values, which gives exactly the ranks of the full column;
* **log fold change** ``log2((expm1(mean_group) + 1e-9) / (expm1(mean_ref) + 1e-9))``,
  with ``expm1`` in the base of ``uns['log1p']['base']`` when the file records one;
* **Benjamini-Hochberg** adjusted p-values over all genes (statsmodels' ``fdr_bh``);
* genes ranked by score, descending (ties by gene order).

Sums per group come from one pass over the stored values of the cells involved; for a
group against the rest of a CSR matrix, the rest is the whole-matrix totals (one pass,
cached by the caller) minus the group, so only the group's rows are read. Ranks need
every gene's values sorted: against the rest of a large CSR matrix they are sorted once
and kept (data/rank_table.py), otherwise sorted per test, a gene block at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from cellucid_desktop.data.gene_index import GeneIndex
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.matrix_scan import (BLOCK, GeneBlock, RowBlock, cell_blocks,
                                               gene_blocks, in_parallel)
from cellucid_desktop.data.rank_table import BLOCK as RANK_BLOCK
from cellucid_desktop.data.rank_table import RankTable, ranks_over_all
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.selections import BadSelection

METHODS = ("t-test", "wilcoxon")
GROUP, REFERENCE = 1, 2  # cell labels; 0 = in neither
_EPSILON = 1e-9  # scanpy's guard against a zero mean in the fold change

Check = Callable[[float], None]  # progress 0..1; raises to cancel


class GroupError(BadSelection):
    """The two groups cannot be compared (too small, overlapping, out of range)."""


@dataclass(frozen=True)
class Groups:
    """Which cells are compared: ``labels`` is GROUP, REFERENCE or 0 per cell."""

    labels: np.ndarray
    n_group: int
    n_reference: int
    rest: bool  # the reference is every cell outside the group

    @classmethod
    def of(cls, n_cells: int, group: np.ndarray, reference: np.ndarray | None) -> Groups:
        """From row numbers (any order, repeats ignored); ``reference`` None is the rest."""
        labels = np.zeros(n_cells, dtype=np.int8)
        group = _rows(group, n_cells, "group")
        if reference is None:
            labels[:] = REFERENCE
        else:
            labels[_rows(reference, n_cells, "reference")] = REFERENCE
            shared = int(np.count_nonzero(labels[group] == REFERENCE))
            if shared:
                raise GroupError(f"The group and the reference share {shared:,} cells; a "
                                 "cell can be in only one of them")
        labels[group] = GROUP
        n_group = int(group.size)
        n_reference = int(np.count_nonzero(labels == REFERENCE))
        for name, n in (("group", n_group), ("reference", n_reference)):
            if n < 2:
                raise GroupError(f"The {name} has {n} cell{'s' if n != 1 else ''}; a test "
                                 "needs at least 2 cells on each side")
        return cls(labels, n_group, n_reference, reference is None)

    def rows(self, *labels: int) -> np.ndarray:
        """Sorted rows carrying any of ``labels``."""
        return np.flatnonzero(np.isin(self.labels, labels))


def _rows(rows: np.ndarray, n_cells: int, name: str) -> np.ndarray:
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if rows.size and (rows[0] < 0 or rows[-1] >= n_cells):
        raise GroupError(f"The {name} names a cell outside 0..{n_cells - 1}")
    return rows


@dataclass
class Moments:
    """Per gene, over ``n`` cells: sum, sum of squares and cells with a non-zero value."""

    n: int
    total: np.ndarray
    squares: np.ndarray
    expressed: np.ndarray

    def __sub__(self, other: Moments) -> Moments:
        return Moments(self.n - other.n, self.total - other.total,
                       self.squares - other.squares, self.expressed - other.expressed)

    def mean(self) -> np.ndarray:
        return self.total / self.n

    def var(self) -> np.ndarray:
        """Unbiased variance, as scanpy: (E[x^2] - E[x]^2) * n / (n - 1)."""
        mean = self.mean()
        return (self.squares / self.n - mean ** 2) * (self.n / (self.n - 1))


class _Accumulator:
    """Sums per (label, gene): [sum, sum of squares, non-zero count][label][gene]."""

    def __init__(self, n_labels: int, n_genes: int) -> None:
        self.n_labels, self.n_genes = n_labels, n_genes
        self.sums = np.zeros((3, n_labels, n_genes))

    def rows(self, block: RowBlock, labels: np.ndarray) -> np.ndarray:
        """The sums of a block of whole cells: each one sparse product with the cells'
        labels (scipy's compiled loop, faster than numpy's bincount)."""
        onehot = (labels[block.rows][:, None] == np.arange(1, self.n_labels + 1)).astype(float)
        matrix = block.matrix(self.n_genes)
        matrix.sum_duplicates()  # a cell stored twice (non-canonical CSR) holds the sum
        values = matrix.data
        return np.stack([(sparse.csr_matrix((data, matrix.indices, matrix.indptr),
                                            shape=matrix.shape).T @ onehot).T
                         for data in (values, values * values,
                                      (values != 0).astype(np.float64))])

    def values(self, labels: np.ndarray, genes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The sums of values of any cells and genes (gene-major blocks)."""
        keep = labels > 0
        slot = genes[keep].astype(np.int64) + (labels[keep].astype(np.int64) - 1) * self.n_genes
        values = values[keep].astype(np.float64)
        size = self.n_labels * self.n_genes
        return np.stack([np.bincount(slot, weights=values, minlength=size),
                         np.bincount(slot, weights=values * values, minlength=size),
                         np.bincount(slot[values != 0], minlength=size)]
                        ).reshape(self.sums.shape)

    def moments(self, label: int, n: int) -> Moments:
        total, squares, expressed = self.sums[:, label - 1]
        return Moments(n, total, squares, expressed.astype(np.int64))


def _sum_blocks(acc: _Accumulator, labels: np.ndarray, reader: DatasetReader, source: Source,
                rows: np.ndarray | None, check: Check) -> None:
    """Add the sums of every block (of ``rows``, CSR; of all genes otherwise) to ``acc``,
    blocks summed in parallel."""
    if source.layout == "csr":
        work = lambda item: (item[0], acc.rows(item[1], labels))  # noqa: E731
        blocks = _cell_major(reader, source, rows)
    else:
        work = lambda item: (item[0], acc.values(labels[item[1][3]], item[1][2] + item[1][0],
                                                 item[1][4]))  # noqa: E731
        blocks = _gene_major(reader, source, None)
    for done, part in in_parallel(work, blocks):
        acc.sums += part
        check(done)


def totals(reader: DatasetReader, source: Source, check: Check) -> Moments:
    """Moments of every gene over all cells: one pass over the stored values."""
    n_cells, n_genes = source.info.shape
    acc = _Accumulator(1, n_genes)
    _sum_blocks(acc, np.ones(n_cells, dtype=np.int8), reader, source, None, check)
    return acc.moments(1, n_cells)


def group_moments(reader: DatasetReader, source: Source, groups: Groups, check: Check,
                  all_cells: Callable[[], Moments] | None = None) -> tuple[Moments, Moments]:
    """(group, reference) moments. A CSR source reads only the rows involved, and
    against the rest takes the reference as ``all_cells() - group``."""
    acc = _Accumulator(2, source.info.shape[1])
    rows = groups.rows(*((GROUP,) if groups.rest else (GROUP, REFERENCE)))
    _sum_blocks(acc, groups.labels, reader, source, rows, check)
    group = acc.moments(GROUP, groups.n_group)
    if source.layout == "csr" and groups.rest:
        everything = all_cells() if all_cells is not None else totals(reader, source,
                                                                       lambda _: None)
        return group, everything - group
    return group, acc.moments(REFERENCE, groups.n_reference)


def _cell_major(reader: DatasetReader, source: Source, rows: np.ndarray | None,
                ) -> Iterator[tuple[float, RowBlock]]:
    """Cell-major blocks with the fraction of the work done after each."""
    n_rows = source.info.shape[0]
    for block in cell_blocks(reader, source, rows):
        last = int(block.rows[-1]) if block.rows.size else 0
        done = (np.searchsorted(rows, last, side="right") / max(rows.size, 1)
                if rows is not None else (last + 1) / max(n_rows, 1))
        yield float(done), block


def _gene_major(reader: DatasetReader, source: Source, index: GeneIndex | None,
                block: int = BLOCK) -> Iterator[tuple[float, GeneBlock]]:
    """Gene-major blocks with the fraction of the work done after each."""
    n_genes = source.info.shape[1]
    for item in gene_blocks(reader, source, index, block):
        yield item[1] / max(n_genes, 1), item


def welch_t_test(group: Moments, reference: Moments) -> tuple[np.ndarray, np.ndarray]:
    """(scores, p-values) of Welch's t-test, as scipy's ttest_ind_from_stats computes
    them for scanpy (NaN scores become 0, NaN p-values 1)."""
    from scipy.special import stdtr

    n1, n2 = group.n, reference.n
    with np.errstate(divide="ignore", invalid="ignore"):
        # scanpy hands scipy standard deviations, which scipy squares again: a variance
        # that rounding made slightly negative (a constant gene) becomes NaN, so score 0
        vn1 = np.sqrt(group.var()) ** 2 / n1
        vn2 = np.sqrt(reference.var()) ** 2 / n2
        df = (vn1 + vn2) ** 2 / (vn1 ** 2 / (n1 - 1) + vn2 ** 2 / (n2 - 1))
        df = np.where(np.isnan(df), 1.0, df)
        scores = (group.mean() - reference.mean()) / np.sqrt(vn1 + vn2)
        pvalues = 2 * stdtr(df, -np.abs(scores))
    scores[np.isnan(scores)] = 0
    pvalues[np.isnan(pvalues)] = 1
    return scores, pvalues


def wilcoxon(reader: DatasetReader, source: Source, groups: Groups, index: GeneIndex | None,
             check: Check, tie_correct: bool = False,
             all_cells: Callable[[], Moments] | None = None,
             ranks: RankTable | None = None,
             ) -> tuple[np.ndarray, np.ndarray, Moments, Moments]:
    """(scores, p-values, group moments, reference moments) of the rank-sum test.

    Against the rest with a ``ranks`` table (a CSR source's gene index ranked once),
    one pass adds up the group's ranks; otherwise one gene-major pass ranks every gene
    (a CSR source needs its gene ``index`` unless it is small). A CSR source's moments
    come from the cell-major pass of the t-test, cheaper than sums per gene block.
    """
    from scipy.special import ndtr

    n_genes = source.info.shape[1]
    n1, n2 = groups.n_group, groups.n_reference
    n = n1 + n2
    rank_sums, tie_terms = np.zeros(n_genes), np.zeros(n_genes)
    cell_major = source.layout == "csr"
    acc = _Accumulator(2, n_genes)
    share = 0.85 if cell_major else 1.0
    if ranks is not None and groups.rest and index is not None:
        def work(item: tuple) -> tuple[int, int, np.ndarray]:
            g0, g1, genes, cells, cell_ranks = item
            return g0, g1, _group_sums(g1 - g0, genes, groups.labels[cells] == GROUP,
                                       cell_ranks, n1, ranks.zero_rank[g0:g1])

        for number, (g0, g1, sums) in enumerate(in_parallel(work, ranks.blocks_read(index))):
            rank_sums[g0:g1] = sums
            check(share * (number + 1) / len(ranks.blocks))
        tie_terms = ranks.ties
    else:
        def work(item: tuple[float, GeneBlock]) -> tuple:
            done, (g0, g1, genes, cells, values) = item
            labels = groups.labels[cells]
            sums = None if cell_major else acc.values(labels, genes + g0, values)
            return done, g0, g1, _rank_sums(g1 - g0, genes, labels, values, n, n1), sums

        for done, g0, g1, (sums, ties), moments in in_parallel(
                work, _gene_major(reader, source, index, RANK_BLOCK)):
            rank_sums[g0:g1], tie_terms[g0:g1] = sums, ties
            if moments is not None:
                acc.sums += moments
            check(share * done)
    if cell_major:
        group, reference = group_moments(reader, source, groups,
                                         lambda done: check(share + (1 - share) * done),
                                         all_cells)
    else:
        group, reference = acc.moments(GROUP, n1), acc.moments(REFERENCE, n2)
    correction = 1 - tie_terms / (n ** 3 - n) if tie_correct else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (rank_sums - n1 * (n + 1) / 2) / np.sqrt(correction * n1 * n2 * (n + 1) / 12)
    scores[np.isnan(scores)] = 0
    pvalues = 2 * ndtr(-np.abs(scores))
    return scores, pvalues, group, reference


def _rank_sums(n_genes: int, genes: np.ndarray, labels: np.ndarray, values: np.ndarray,
               n: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    """Per gene: the group's rank sum among the ``n`` compared cells (labelled), and the
    tie term sum(t^3 - t)."""
    keep = labels > 0
    if not keep.all():
        genes, labels, values = genes[keep], labels[keep], values[keep]
    ranks, zero_rank, ties = ranks_over_all(n_genes, genes, values, n)
    return _group_sums(n_genes, genes, labels == GROUP, ranks, n1, zero_rank), ties


def _group_sums(n_genes: int, genes: np.ndarray, in_group: np.ndarray, ranks: np.ndarray,
                n1: int, zero_rank: np.ndarray) -> np.ndarray:
    """The group's rank sums: its stored values' ranks, plus the rank of the zeros for
    each of its cells with no stored value."""
    member_genes = genes[in_group]
    sums = np.bincount(member_genes, weights=ranks[in_group], minlength=n_genes)
    return sums + (n1 - np.bincount(member_genes, minlength=n_genes)) * zero_rank


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Adjusted p-values, as statsmodels' ``multipletests(method="fdr_bh")``."""
    order = np.argsort(pvalues)
    ranked = pvalues[order] * pvalues.size / np.arange(1, pvalues.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def log_fold_change(group_mean: np.ndarray, reference_mean: np.ndarray,
                    base: float | None) -> np.ndarray:
    scale = np.log(base) if base is not None else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2((np.expm1(group_mean * scale) + _EPSILON)
                       / (np.expm1(reference_mean * scale) + _EPSILON))


@dataclass(frozen=True)
class Result:
    """Every gene's statistics, in gene order."""

    scores: np.ndarray
    pvalues: np.ndarray
    group: Moments
    reference: Moments
    base: float | None

    def table(self, names: list[str], n: int) -> list[dict]:
        """The ``n`` best genes (highest score first) as the data API answers them."""
        adjusted = benjamini_hochberg(self.pvalues)
        mean_group, mean_reference = self.group.mean(), self.reference.mean()
        changes = log_fold_change(mean_group, mean_reference, self.base)
        order = np.lexsort((np.arange(self.scores.size), -self.scores))[:n]
        return [{"name": names[g], "score": _number(self.scores[g]),
                 "logfoldchange": _number(changes[g]), "pvalue": _number(self.pvalues[g]),
                 "pvalue_adj": _number(adjusted[g]),
                 "mean_group": _number(mean_group[g]),
                 "mean_reference": _number(mean_reference[g]),
                 "pct_group": _number(self.group.expressed[g] / self.group.n),
                 "pct_reference": _number(self.reference.expressed[g] / self.reference.n)}
                for g in order.tolist()]


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    value = float(value)
    return value if np.isfinite(value) else None


def compare(reader: DatasetReader, source: Source, groups: Groups, method: str, check: Check,
            *, index: GeneIndex | None = None, all_cells: Callable[[], Moments] | None = None,
            ranks: RankTable | None = None, tie_correct: bool = False) -> Result:
    """Run the test; ``check(fraction)`` reports progress and may raise to stop it."""
    base = reader.meta.log1p_base
    if method == "t-test":
        group, reference = group_moments(reader, source, groups, check, all_cells)
        scores, pvalues = welch_t_test(group, reference)
    elif method == "wilcoxon":
        scores, pvalues, group, reference = wilcoxon(reader, source, groups, index, check,
                                                     tie_correct, all_cells, ranks)
    else:
        raise ValueError(f"method must be one of {METHODS}")
    return Result(scores, pvalues, group, reference, base)
