"""Every analysis route on every odd and damaged file of tests/data_api/odd_files.py:
an answer or one clean sentence (a 4xx), never a 500, a traceback or a wrong length."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import anndata as ad
import numpy as np
import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.server.registry import DatasetRegistry
from tests.analysis.conftest import AnalysisApi
from tests.data_api.conftest import q
from tests.data_api.odd_files import build_all, build_damaged


@pytest.fixture(scope="module")
def odd_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnalysisApi, list]]:
    folder = tmp_path_factory.mktemp("odd-analysis")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = [path for path, _ in build_all(folder).values()]
    paths += list(build_damaged(folder).values())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("odd-analysis-cache")))
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("odd-analysis-data")))
        registry = DatasetRegistry()
        datasets = []
        for path in paths:
            try:
                datasets.append((path, registry.add(path)))
            except DatasetError:
                continue  # refused with a sentence: tests/data_api checks those
        api = AnalysisApi(registry)
        try:
            yield api, datasets
        finally:
            api.stop()


def clean(answer, what: str) -> None:
    assert answer.status < 500, (what, answer.status, answer.body[:300])
    if answer.status >= 400:
        message = answer.json()["error"]
        assert message and "Traceback" not in message, (what, message)


def test_every_route_answers_every_odd_file_cleanly(odd_api):
    api, datasets = odd_api
    assert len(datasets) > 40
    for path, dataset in datasets:
        base = f"/datasets/{dataset.id}"
        document = api.get(base).json()
        n = document["n_cells"]
        rows = list(range(min(n, 4)))
        tooltip = api.get(f"{base}/cells/0")
        clean(tooltip, f"{path.name} tooltip")
        if n:
            assert tooltip.status == 200, (path.name, tooltip.body)
        csv = api.post(f"{base}/cells.csv", {"cells": rows,
                                             "columns": [o["key"] for o in document["obs"]]})
        clean(csv, f"{path.name} csv")
        saved = api.post(f"{base}/annotations", {"key": "odd sweep",
                                                 "categories": {"first": rows[:1]}})
        clean(saved, f"{path.name} annotations")
        if n:
            assert saved.status == 200, (path.name, saved.body)
            keys = [o["key"] for o in api.get(base).json()["obs"]]
            assert keys[-1] == "odd sweep"
            codes = api.get(f"{base}/obs/odd%20sweep/values")
            assert len(codes.body) == 2 * n
        for source in document["expression_sources"]:
            for method in ("t-test", "wilcoxon"):
                answer = api.post(f"{base}/diffexp", {"group": {"cells": rows[:2]},
                                                      "method": method, "source": source["id"]})
                clean(answer, f"{path.name} {source['id']} {method}")
                if n >= 4 and answer.status == 200:
                    scores = [g["score"] for g in answer.json()["genes"]]
                    assert scores == sorted(scores, reverse=True)
            names = api.get(f"{base}/genes?limit=2&source={q(source['id'])}").json().get(
                "genes", [])  # a source without readable gene names answers an error
            if names:
                answer = api.post(f"{base}/gene-set", {"genes": [g["name"] for g in names],
                                                       "source": source["id"]})
                clean(answer, f"{path.name} gene set")
                if answer.status == 200:
                    assert len(answer.body) == 4 * n
        exported = api.get(f"{base}/export.h5ad")
        clean(exported, f"{path.name} export")
        if exported.status == 200 and n:
            copy = path.with_name(f"{path.stem}-exported.h5ad")
            copy.write_bytes(exported.body)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    original = ad.read_h5ad(path)
                except Exception:  # noqa: BLE001 - a file anndata cannot read: nothing to compare
                    continue
                written = ad.read_h5ad(copy)
            assert written.n_obs == original.n_obs
            assert np.flatnonzero(written.obs["odd sweep"].notna()).tolist() == rows[:1]
