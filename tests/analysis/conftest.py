"""Fixtures of the analysis tests: PBMC-like files in every layout and a real server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import anndata as ad
import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from tests.analysis.data import pbmc_like, write
from tests.data_api.conftest import Answer, Api


class AnalysisApi(Api):
    """A running server plus POSTs, the way the viewer sends them."""

    def post(self, path: str, body: object, headers: dict[str, str] | None = None) -> Answer:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        try:
            conn.request("POST", f"/api/v1{path}", body=data, headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.server.token}", **(headers or {})})
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()},
                          response.read())
        finally:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[AnalysisApi, str]]]:
    """``serve(path)``: a server with that file registered, and its dataset id."""
    started: list[AnalysisApi] = []

    def start(path: Path, dataset_id: str = "pbmc",
              modality: str | None = None) -> tuple[AnalysisApi, str]:
        registry = DatasetRegistry()
        dataset = registry.add(path, dataset_id=dataset_id, modality=modality)
        api = AnalysisApi(registry)
        started.append(api)
        return api, dataset.id

    yield start
    for api in started:
        api.stop()


@pytest.fixture(scope="session")
def pbmc() -> ad.AnnData:
    return pbmc_like()


@pytest.fixture(scope="session")
def pbmc_files(pbmc: ad.AnnData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same data with X (and raw.X) stored as CSR, CSC and dense; and "raw-counts":
    X holding the integer counts (ties everywhere), CSR."""
    folder = tmp_path_factory.mktemp("pbmc")
    files = {layout: write(pbmc, folder / f"pbmc-{layout}.h5ad", layout)
             for layout in ("csr", "csc", "dense")}
    counts = pbmc.copy()
    counts.X = counts.layers["counts"]
    files["raw-counts"] = write(counts, folder / "pbmc-counts.h5ad")
    return files
