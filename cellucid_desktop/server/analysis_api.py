"""The data API's analysis routes: differential expression, saved selections, cells
(barcodes CSV, tooltip), gene sets, the annotated copy, and the background jobs.

docs/data-api.md is the contract. Write routes are POSTs with JSON bodies, accepted only
from the viewer's own origin (server/same_origin.py). Heavy work (a pass over every
stored value) runs one at a time (server/jobs.py), in the request or, asked with
``"background": true``, as a job the viewer polls and may cancel.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
from flask import Blueprint, Flask, Response, current_app, request, stream_with_context

from cellucid_desktop import paths
from cellucid_desktop.data import diffexp, gene_sets, rank_table
from cellucid_desktop.data.annotated_copy import copy_dataset
from cellucid_desktop.data.annotations import SavedColumn
from cellucid_desktop.data.diffexp import Groups, Moments
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.gene_index import GeneIndex
from cellucid_desktop.data.genes import Source, UnknownGene, find_source
from cellucid_desktop.data.matrix_scan import fits_in_memory
from cellucid_desktop.data.obs import MISSING_CODE, ObsColumn
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.selections import rows_from_json
from cellucid_desktop.server.data_api import (EXPOSED, ApiError, DataService,
                                              add_error_handlers, data_service, find_dataset,
                                              finite_range, json_response, obs_column,
                                              saved_columns)
from cellucid_desktop.server.context import server_context
from cellucid_desktop.server.jobs import Job, JobRunner, Progress
from cellucid_desktop.server.registry import Dataset
from cellucid_desktop.server.same_origin import post_refusal

bp = Blueprint("cellucid_analysis_api", __name__, url_prefix="/api/v1")
add_error_handlers(bp)

DEFAULT_GENES = 100
TOTALS_KEPT = 8  # whole-matrix sums per (file version, source), a few KB each
CSV_ROWS = 1 << 16  # cells written per step of a CSV answer
STALE_EXPORT_SECONDS = 24 * 3600


class AnalysisService:
    """Jobs and the per-source totals that analyses reuse (both per server)."""

    def __init__(self) -> None:
        self.jobs = JobRunner()
        self._lock = threading.Lock()
        self._totals: OrderedDict[tuple[str, str, str], Moments] = OrderedDict()

    def totals(self, reader: DatasetReader, source: Source,
               progress: Callable[[float], None]) -> Moments:
        """Sums over every cell of each gene of ``source``: one pass, then remembered."""
        key = (reader.location, reader.identity, source.id)
        with self._lock:
            if key in self._totals:
                self._totals.move_to_end(key)
                return self._totals[key]
        moments = diffexp.totals(reader, source, progress)
        with self._lock:
            self._totals[key] = moments
            while len(self._totals) > TOTALS_KEPT:
                self._totals.popitem(last=False)
        return moments

    def gene_index(self, service: DataService, reader: DatasetReader, source: Source,
                   progress: Callable[[float], None]) -> GeneIndex | None:
        """The gene index a gene-by-gene pass over a large CSR source needs, built (and
        waited for) if missing; None when the source needs none."""
        if source.layout != "csr" or fits_in_memory(source):
            return None
        return service.index.wait(reader, source, progress)


def register(app: Flask) -> None:
    """Mount the analysis routes next to the data API (called from create_flask_app)."""
    app.extensions["cellucid_analysis"] = AnalysisService()
    app.register_blueprint(bp)


def _analysis() -> AnalysisService:
    return current_app.extensions["cellucid_analysis"]


@bp.before_request
def _only_own_origin_writes() -> None:
    refusal = post_refusal(request.method, request.headers.get("Origin"),
                           request.headers.get("Host"), request.headers.get("Content-Type", ""),
                           bool(request.content_length))
    if refusal is not None:
        raise ApiError(*refusal)


def _body() -> dict:
    if not request.content_length:
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    return body


def _cells_of(dataset: Dataset, reader: DatasetReader, spec: object, what: str) -> np.ndarray:
    """The rows of a group: ``{"cells": [...]}`` or ``{"obs": column, "value": category}``."""
    if isinstance(spec, dict) and "cells" in spec:
        return rows_from_json(spec["cells"], reader.meta.n_cells, f"The {what}'s cells")
    if isinstance(spec, dict) and isinstance(spec.get("obs"), str) and "value" in spec:
        column, _ = obs_column(dataset, reader, spec["obs"])
        if column.categories is None:
            raise ApiError(400, f"The obs column {spec['obs']!r} holds numbers, not categories; "
                                "select its cells instead")
        value = spec["value"]
        label = str(value) if not isinstance(value, str) else value
        if label not in column.categories:
            raise ApiError(400, f"The obs column {spec['obs']!r} has no category {label!r}")
        return np.flatnonzero(column.values == column.categories.index(label))
    raise ApiError(400, f'The {what} must be {{"cells": [row, ...]}} or '
                        '{"obs": column, "value": category}')


def _source(reader: DatasetReader, body: dict) -> Source:
    value = body.get("source")
    if value is not None and not isinstance(value, str):
        raise ApiError(400, "source must be X, raw or layers/<name>")
    return find_source(reader.meta, value)


def _choice(body: dict, name: str, choices: tuple[str, ...]) -> str:
    value = body.get(name, choices[0])
    if value not in choices:
        raise ApiError(400, f"{name} must be one of: {', '.join(choices)}")
    return value


@bp.post("/datasets/<dataset_id>/diffexp")
def differential_expression(dataset_id: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    body = _body()
    method = _choice(body, "method", diffexp.METHODS)
    n = body.get("n", DEFAULT_GENES)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ApiError(400, "n must be a whole number of genes, at least 1")
    source = _source(reader, body)
    group = _cells_of(dataset, reader, body.get("group"), "group")
    reference = body.get("reference", "rest")
    others = None if reference == "rest" else _cells_of(dataset, reader, reference, "reference")
    groups = Groups.of(reader.meta.n_cells, group, others)
    names = data_service().gene_names(reader, source).names
    service, analysis = data_service(), _analysis()
    tie_correct = bool(body.get("tie_correct", False))

    def work(progress: Progress) -> dict:
        index = ranks = None
        start = 0.0
        if method == "wilcoxon":
            index = analysis.gene_index(service, reader, source,
                                        progress.part(0, 0.4, "Building the gene index"))
        if index is not None and groups.rest:
            ranks = rank_table.RankTable.open(index) or rank_table.build(
                index, progress.part(0.4, 0.9, "Ranking every gene (once per dataset)"))
            start = 0.9
        elif index is not None:
            start = 0.4
        check = progress.part(start, 1, "Comparing")

        def all_cells() -> Moments:
            return analysis.totals(reader, source, lambda fraction: None)

        result = diffexp.compare(reader, source, groups, method, check, index=index,
                                 all_cells=all_cells, ranks=ranks, tie_correct=tie_correct)
        return {"method": method, "source": source.id, "n_group": groups.n_group,
                "n_reference": groups.n_reference, "genes": result.table(names, n)}

    if body.get("background"):
        job = analysis.jobs.submit(work, message="Comparing")
        return json_response({"job": job.id}, 202)
    return json_response(analysis.jobs.run(work))


@bp.get("/jobs/<job_id>")
def job_state(job_id: str) -> Response:
    return _job_answer(job_id, _analysis().jobs.get(job_id))


@bp.post("/jobs/<job_id>/cancel")
def job_cancel(job_id: str) -> Response:
    return _job_answer(job_id, _analysis().jobs.cancel(job_id))


def _job_answer(job_id: str, job: Job | None) -> Response:
    if job is None:
        raise ApiError(404, f"No job {job_id!r}; it may have finished long ago")
    state = job.describe()
    if state["error"]:  # a sentence for the user, which never names a local path
        state["error"] = server_context().registry.public_message(state["error"])
    return json_response(state)


def _annotation_listing(dataset: Dataset, reader: DatasetReader) -> Response:
    store = data_service().annotations(dataset, reader)
    columns = [c.describe() for c in store.columns()]  # reading them may set a message
    message = store.message and server_context().registry.public_message(store.message)
    return json_response({"columns": columns, "message": message})


@bp.get("/datasets/<dataset_id>/annotations")
def annotations(dataset_id: str) -> Response:
    return _annotation_listing(*find_dataset(dataset_id))


@bp.post("/datasets/<dataset_id>/annotations")
def save_annotation(dataset_id: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    body = _body()
    key = body.get("key")
    if key in {c.name for c in reader.meta.obs_columns}:
        raise ApiError(409, f"The dataset already has an obs column named {key!r}; choose "
                            "another name")
    column = SavedColumn.from_rows(key, body.get("categories"), reader.meta.n_cells)
    data_service().annotations(dataset, reader).save(column)
    return _annotation_listing(dataset, reader)


@bp.post("/datasets/<dataset_id>/annotations/<path:key>/delete")
def delete_annotation(dataset_id: str, key: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    if not data_service().annotations(dataset, reader).delete(key):
        raise ApiError(404, f"No saved selection named {key!r}")
    return _annotation_listing(dataset, reader)


def _columns_at(dataset: Dataset, reader: DatasetReader, keys: list[str], rows: np.ndarray,
                skip_unreadable: bool = False) -> list[tuple[str, ObsColumn]]:
    """The obs columns ``keys`` (of the data or saved) at the sorted ``rows``; with
    ``skip_unreadable``, columns that are not one value per cell are left out instead
    of failing the request."""
    known = {c.name for c in reader.meta.obs_columns}
    known |= {c.key for c in saved_columns(dataset, reader)}
    out = []
    for key in keys:
        if key not in known:
            raise ApiError(404, f"This dataset has no obs column named {key!r}")
        try:
            column, _ = obs_column(dataset, reader, key)  # whole columns, remembered
        except (DatasetError, ApiError):
            if skip_unreadable:
                continue
            raise
        out.append((key, column.subset(rows)))
    return out


def _text(column: ObsColumn, i: int) -> str:
    """One cell's value as CSV text (empty when missing)."""
    value = column.values[i]
    if column.categories is not None:
        return "" if value == MISSING_CODE else column.categories[int(value)]
    return "" if np.isnan(value) else format(float(value), ".7g")


def _json_value(column: ObsColumn, i: int) -> str | float | None:
    value = column.values[i]
    if column.categories is not None:
        return None if value == MISSING_CODE else column.categories[int(value)]
    return None if np.isnan(value) else float(value)


def _column_keys(value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ApiError(400, "columns must be a list of obs column names")
    return value


@bp.post("/datasets/<dataset_id>/cells.csv")
def cells_csv(dataset_id: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    body = _body()
    rows = np.unique(rows_from_json(body.get("cells"), reader.meta.n_cells, "cells"))
    keys = _column_keys(body.get("columns"))
    _columns_at(dataset, reader, keys, rows[:1])  # unknown columns: an error before any byte

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["barcode", *keys])
        for start in range(0, rows.size, CSV_ROWS):
            part = rows[start:start + CSV_ROWS]
            names = reader.obs_names(part)
            columns = _columns_at(dataset, reader, keys, part)
            for i, name in enumerate(names):
                writer.writerow([name, *(_text(c, i) for _, c in columns)])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        yield out.getvalue()

    filename = f"{dataset.id}-cells.csv"
    return Response(stream_with_context(lines()), content_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename=\"{filename}\"",
        "Access-Control-Expose-Headers": EXPOSED})


@bp.get("/datasets/<dataset_id>/cells/<int:row>")
def cell(dataset_id: str, row: int) -> Response:
    dataset, reader = find_dataset(dataset_id)
    if not 0 <= row < reader.meta.n_cells:
        raise ApiError(404, f"This dataset has no cell {row}; rows are 0..{reader.meta.n_cells - 1}")
    wanted = request.args.get("columns")
    if wanted is None:
        keys = [c.name for c in reader.meta.obs_columns]
        keys += [c.key for c in saved_columns(dataset, reader)]
    else:
        keys = [k for k in wanted.split(",") if k]
    at = np.array([row])
    name = str(reader.obs_names(at)[0])
    columns = _columns_at(dataset, reader, keys, at, skip_unreadable=wanted is None)
    values = {key: _json_value(column, 0) for key, column in columns}
    return json_response({"row": row, "name": name, "obs": values})


def _header_list(names: list[str]) -> str:
    """Names for a header: comma-separated, each percent-encoded (decodeURIComponent)."""
    return ",".join(quote(name, safe="") for name in names)


@bp.post("/datasets/<dataset_id>/gene-set")
def gene_set(dataset_id: str) -> Response:
    started = time.perf_counter()
    _, reader = find_dataset(dataset_id)
    body = _body()
    method = _choice(body, "method", gene_sets.METHODS)
    source = _source(reader, body)
    genes = body.get("genes")
    if not isinstance(genes, list) or not genes or not all(isinstance(g, str) for g in genes):
        raise ApiError(400, "genes must be a non-empty list of gene names")
    service, analysis = data_service(), _analysis()
    names = service.gene_names(reader, source)
    used, missing, chosen = [], [], []
    for name in genes:
        try:
            index = names.lookup(name)
        except UnknownGene:
            missing.append(name)
            continue
        if index not in chosen:
            chosen.append(index)
            used.append(names.names[index])
    if not chosen:
        raise ApiError(404, f"None of the genes ({', '.join(genes[:5])}"
                            f"{', ...' if len(genes) > 5 else ''}) is in {source.label}")
    index = service.index.open(reader, source) if source.layout == "csr" else None
    service.index.ensure(reader, source)  # later gene sets read genes one by one

    def work(progress: Progress) -> tuple[np.ndarray, int]:
        return gene_sets.gene_set_values(
            reader, source, np.array(chosen, dtype=np.int64), method,
            lambda: analysis.totals(reader, source, lambda fraction: None), index, progress)

    values, n_controls = analysis.jobs.run(work)
    if method == "score" and n_controls == 0:
        raise ApiError(422, "No control genes were found for this gene set (every gene of "
                            "its expression bins is in the set); use the mean instead")
    low, high = finite_range(values, False)
    headers = {"X-Min": repr(low), "X-Max": repr(high), "X-Genes-Used": _header_list(used),
               "X-Genes-Missing": _header_list(missing), "X-Control-Genes": str(n_controls),
               "Server-Timing": f"app;dur={(time.perf_counter() - started) * 1e3:.2f}",
               "Access-Control-Expose-Headers": EXPOSED}
    return Response(values.astype("<f4", copy=False).tobytes(),
                    content_type="application/octet-stream", headers=headers)


@bp.get("/datasets/<dataset_id>/export.h5ad")
def export(dataset_id: str) -> Response:
    dataset, reader = find_dataset(dataset_id)
    service = data_service()
    columns = service.annotations(dataset, reader).columns()
    folder = paths.cache_dir() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("export-*.h5ad"):  # left by a crash or a dropped download
        if time.time() - stale.stat().st_mtime > STALE_EXPORT_SECONDS:
            stale.unlink(missing_ok=True)
    handle, name = tempfile.mkstemp(prefix="export-", suffix=".h5ad", dir=folder)
    os.close(handle)
    target = Path(name)
    try:
        _analysis().jobs.run(lambda _: copy_dataset(dataset.source, columns, target))
    except BaseException:
        target.unlink(missing_ok=True)
        raise

    def body() -> Iterator[bytes]:
        try:
            with open(target, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        finally:  # the download ended (or was dropped): the temporary copy goes
            target.unlink(missing_ok=True)

    return Response(body(), content_type="application/octet-stream", headers={
        "Content-Length": str(target.stat().st_size),
        "Content-Disposition": f'attachment; filename="{dataset.id}-annotated.h5ad"',
        "Access-Control-Expose-Headers": EXPOSED})
