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
cached by the caller) minus the group, so only the group's rows are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import h5py
import numpy as np

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.gene_index import GeneIndex
from cellucid_desktop.data.genes import Source
from cellucid_desktop.data.matrix_scan import GeneBlock, RowBlock, cell_blocks, gene_blocks
from cellucid_desktop.data.reader import DatasetReader

METHODS = ("t-test", "wilcoxon")
GROUP, REFERENCE = 1, 2  # cell labels; 0 = in neither
_EPSILON = 1e-9  # scanpy's guard against a zero mean in the fold change

Check = Callable[[float], None]  # progress 0..1; raises to cancel


class GroupError(DatasetError):
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

    @classmethod
    def empty(cls, n_genes: int, n: int = 0) -> Moments:
        return cls(n, np.zeros(n_genes), np.zeros(n_genes), np.zeros(n_genes, dtype=np.int64))

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
    """Sums per (label, gene) over cell-major or gene-major blocks."""

    def __init__(self, n_labels: int, n_genes: int) -> None:
        self.n_labels, self.n_genes = n_labels, n_genes
        self.total = np.zeros((n_labels, n_genes))
        self.squares = np.zeros((n_labels, n_genes))
        self.expressed = np.zeros((n_labels, n_genes))

    def add_rows(self, block: RowBlock, labels: np.ndarray) -> None:
        """A block of whole cells: each sum is one sparse product with the cells' labels
        (scipy's compiled loop, faster than numpy's bincount)."""
        onehot = (labels[block.rows][:, None] == np.arange(1, self.n_labels + 1)).astype(float)
        values = block.values.astype(np.float64)
        for target, data in ((self.total, values), (self.squares, values * values),
                             (self.expressed, (values != 0).astype(np.float64))):
            target += (block.matrix(self.n_genes, data).T @ onehot).T

    def add(self, labels: np.ndarray, genes: np.ndarray, values: np.ndarray) -> None:
        """Values of any cells and genes (gene-major blocks)."""
        keep = labels > 0
        slot = genes[keep].astype(np.int64) + (labels[keep].astype(np.int64) - 1) * self.n_genes
        values = values[keep].astype(np.float64)
        size = self.total.size
        self.total += np.bincount(slot, weights=values, minlength=size).reshape(self.total.shape)
        self.squares += np.bincount(slot, weights=values * values,
                                    minlength=size).reshape(self.total.shape)
        self.expressed += np.bincount(slot[values != 0],
                                      minlength=size).reshape(self.total.shape)

    def moments(self, label: int, n: int) -> Moments:
        return Moments(n, self.total[label - 1], self.squares[label - 1],
                       self.expressed[label - 1].astype(np.int64))


def totals(reader: DatasetReader, source: Source, check: Check) -> Moments:
    """Moments of every gene over all cells: one pass over the stored values."""
    n_cells, n_genes = source.info.shape
    labels = np.ones(n_cells, dtype=np.int8)
    acc = _Accumulator(1, n_genes)
    if source.layout == "csr":
        for done, block in _cell_major(reader, source, None):
            acc.add_rows(block, labels)
            check(done)
    else:
        for done, (g0, _, genes, cells, values) in _gene_major(reader, source, None):
            acc.add(labels[cells], genes + g0, values)
            check(done)
    return acc.moments(1, n_cells)


def group_moments(reader: DatasetReader, source: Source, groups: Groups, check: Check,
                  all_cells: Callable[[], Moments] | None = None) -> tuple[Moments, Moments]:
    """(group, reference) moments. A CSR source reads only the rows involved, and
    against the rest takes the reference as ``all_cells() - group``."""
    n_genes = source.info.shape[1]
    acc = _Accumulator(2, n_genes)
    if source.layout == "csr":
        labels = (GROUP,) if groups.rest else (GROUP, REFERENCE)
        for done, block in _cell_major(reader, source, groups.rows(*labels)):
            acc.add_rows(block, groups.labels)
            check(done)
        group = acc.moments(GROUP, groups.n_group)
        if groups.rest:
            everything = all_cells() if all_cells is not None else totals(reader, source,
                                                                           lambda _: None)
            return group, everything - group
        return group, acc.moments(REFERENCE, groups.n_reference)
    for done, (g0, _, genes, cells, values) in _gene_major(reader, source, None):
        acc.add(groups.labels[cells], genes + g0, values)
        check(done)
    return acc.moments(GROUP, groups.n_group), acc.moments(REFERENCE, groups.n_reference)


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
                ) -> Iterator[tuple[float, GeneBlock]]:
    """Gene-major blocks with the fraction of the work done after each."""
    n_genes = source.info.shape[1]
    for block in gene_blocks(reader, source, index):
        yield block[1] / max(n_genes, 1), block


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
             ) -> tuple[np.ndarray, np.ndarray, Moments, Moments]:
    """(scores, p-values, group moments, reference moments) of the rank-sum test, from
    one gene-major pass (a CSR source needs its gene ``index`` unless it is small; its
    moments come from the cell-major pass of the t-test, cheaper than sums per block)."""
    from scipy.special import ndtr

    n_genes = source.info.shape[1]
    n1, n2 = groups.n_group, groups.n_reference
    n = n1 + n2
    rank_sums, tie_terms = np.zeros(n_genes), np.zeros(n_genes)
    cell_major = source.layout == "csr"
    acc = _Accumulator(2, n_genes)
    share = 0.85 if cell_major else 1.0
    for done, (g0, g1, genes, cells, values) in _gene_major(reader, source, index):
        labels = groups.labels[cells]
        if not cell_major:
            acc.add(labels, genes + g0, values)
        rank_sums[g0:g1], tie_terms[g0:g1] = _rank_sums(g1 - g0, genes, labels, values, n, n1,
                                                        tie_correct)
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
               n: int, n1: int, tie_correct: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per gene: the group's rank sum among the ``n`` compared cells, and (when
    ``tie_correct``) the tie term sum(t^3 - t) over tied blocks. The cells with no stored
    value are one tied block of zeros, between the negative and the positive values."""
    keep = (labels > 0) & (values != 0)
    if not keep.all():
        genes, labels, values = genes[keep], labels[keep], values[keep]
    in_group = labels == GROUP
    sorted_genes, new_tie, negative, group_bits = _sorted_by_gene_and_value(genes, values,
                                                                            in_group)
    m = sorted_genes.size
    stored = np.bincount(sorted_genes, minlength=n_genes)
    stored_in_group = np.bincount(sorted_genes, weights=group_bits, minlength=n_genes)
    zeros = n - stored  # cells of either group whose value is 0
    gene_start = np.cumsum(stored) - stored
    any_negative = negative is not None
    negatives = (np.bincount(sorted_genes[negative], minlength=n_genes) if any_negative
                 else np.zeros(n_genes))
    ties = np.zeros(n_genes)
    if new_tie is None:  # no two values of a gene equal: each rank is a position
        members = np.flatnonzero(group_bits)
        member_genes = sorted_genes[members]
        rank = members - gene_start[member_genes] + 1.0
        rank += zeros[member_genes] if not any_negative else np.where(
            negative[members], 0, zeros[member_genes])
        sums = np.bincount(member_genes, weights=rank, minlength=n_genes)
    else:
        # Average rank of each tied block: its 1-based position within the gene's sorted
        # column, pushed up by the block of zeros when positive.
        tie_start = np.flatnonzero(new_tie)
        tie_size = np.diff(np.append(tie_start, m)).astype(np.float64)
        tie_gene = sorted_genes[tie_start]
        average = tie_start - gene_start[tie_gene] + (tie_size + 1) / 2
        average += zeros[tie_gene] if not any_negative else np.where(
            negative[tie_start], 0, zeros[tie_gene])
        group_in_tie = np.add.reduceat(group_bits, tie_start) if m else np.zeros(0)
        sums = np.bincount(tie_gene, weights=group_in_tie * average, minlength=n_genes)
        if tie_correct:
            ties = np.bincount(tie_gene, weights=tie_size ** 3 - tie_size, minlength=n_genes)
    sums += (n1 - stored_in_group) * (negatives + (zeros + 1) / 2)
    if tie_correct:
        zeros = zeros.astype(np.float64)
        ties += zeros ** 3 - zeros
    return sums, ties


def _sorted_by_gene_and_value(genes: np.ndarray, values: np.ndarray, in_group: np.ndarray,
                              ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None,
                                         np.ndarray]:
    """Sort the values of each gene: (genes, starts of tied blocks or None when no two
    values of a gene are equal, negative or None when none is, in-group as float), all
    in sorted order. float32 values (and anything float32 holds exactly) are sorted as
    one packed integer key per value (gene | value bits | group bit); others by a
    two-key lexsort."""
    exact = _as_float32(values)
    if exact is not None:
        bits = exact.view(np.uint32)
        has_negative = bool(values.size) and bool((bits >> 31).any())
        if has_negative:  # float order as unsigned order: flip negatives, set the sign bit
            bits = np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000))
        key = genes.astype(np.uint64)
        key <<= np.uint64(33)
        key |= bits.astype(np.uint64) << np.uint64(1)
        key |= in_group
        key.sort()
        sorted_genes = (key >> np.uint64(33)).astype(np.intp)
        value_key = key >> np.uint64(1)
        same = value_key[1:] == value_key[:-1]
        negative = ((value_key & np.uint64(0xFFFFFFFF)) < np.uint64(0x80000000)
                    if has_negative else None)
        group_bits = (key & np.uint64(1)).astype(np.float64)
    else:
        order = np.lexsort((values, genes))
        sorted_genes, sorted_values = genes[order].astype(np.intp), values[order]
        same = (sorted_genes[1:] == sorted_genes[:-1]) & (sorted_values[1:] == sorted_values[:-1])
        negative = sorted_values < 0 if bool((sorted_values < 0).any()) else None
        group_bits = in_group[order].astype(np.float64)
    if not same.any():
        return sorted_genes, None, negative, group_bits
    new_tie = np.ones(sorted_genes.size, dtype=bool)
    np.logical_not(same, out=new_tie[1:])
    return sorted_genes, new_tie, negative, group_bits


def _as_float32(values: np.ndarray) -> np.ndarray | None:
    """``values`` as float32 when that keeps every value exactly, else None."""
    if values.dtype == np.float32:
        return values
    narrowed = values.astype(np.float32)
    same = narrowed.astype(values.dtype) == values
    return narrowed if bool(np.all(same | np.isnan(narrowed))) else None


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Adjusted p-values, as statsmodels' ``multipletests(method="fdr_bh")``."""
    order = np.argsort(pvalues)
    ranked = pvalues[order] * pvalues.size / np.arange(1, pvalues.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted[adjusted > 1] = 1
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def log1p_base(h5: h5py.File) -> float | None:
    """The log base scanpy's ``log1p`` recorded in ``uns['log1p']['base']`` (None: e)."""
    item = h5.get("uns/log1p/base")
    if isinstance(item, h5py.Dataset) and item.shape == () and item.dtype.kind in "iuf":
        return float(item[()])
    return None


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
            tie_correct: bool = False) -> Result:
    """Run the test; ``check(fraction)`` reports progress and may raise to stop it."""
    with reader.file() as h5:
        base = log1p_base(h5)
    if method == "t-test":
        group, reference = group_moments(reader, source, groups, check, all_cells)
        scores, pvalues = welch_t_test(group, reference)
    elif method == "wilcoxon":
        scores, pvalues, group, reference = wilcoxon(reader, source, groups, index, check,
                                                     tie_correct, all_cells)
    else:
        raise ValueError(f"method must be one of {METHODS}")
    return Result(scores, pvalues, group, reference, base)
