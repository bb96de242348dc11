"""The gene index through the real server: built in the background, cached in the user
cache folder across restarts, rebuilt when the file changes, and never in the way of
gene requests while it builds."""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cellucid_desktop import paths
from cellucid_desktop.data import gene_index
from cellucid_desktop.data.genes import find_source, read_gene
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.data.h5ad_writer import write_h5ad
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.data.synthetic import make_synthetic
from cellucid_desktop.server.registry import DatasetRegistry
from tests.helpers import wait_for

GENES = ["GENE00000", "GENE00007", "GENE00123", "GENE00499"]


def serve(path: Path, start_api):  # noqa: ANN201 - (Api, Dataset)
    """A running server with ``path`` registered: (api, dataset)."""
    registry = DatasetRegistry()
    dataset = registry.add(path)
    return start_api(registry), dataset


def scan_reference(path: Path, gene: str) -> np.ndarray:
    """The gene read straight from the file, with no index."""
    source = open_local(path)
    reader = DatasetReader(source, source.identity())
    source = find_source(reader.meta, "X")
    return read_gene(reader, source, int(gene.removeprefix("GENE")))


@pytest.fixture
def csr_file(small_h5ad: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(small_h5ad, tmp_path / "cells.h5ad"))


def index_folders() -> list[Path]:
    root = paths.cache_dir() / "gene-index"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def wait_ready(api, dataset_id: str) -> dict:
    return wait_for(lambda: (s := api.get(f"/datasets/{dataset_id}/gene-index").json())
                    ["status"] == "ready" and s, timeout=120, what="gene index ready")


def gene(api, dataset_id: str, name: str) -> np.ndarray:
    answer = api.get(f"/datasets/{dataset_id}/genes/{name}")
    assert answer.status == 200, answer.body
    return np.frombuffer(answer.body, dtype="<f4")


def test_first_gene_request_builds_the_index_and_indexed_genes_equal_scanned(csr_file, start_api):
    api, dataset = serve(csr_file, start_api)
    assert api.get(f"/datasets/{dataset.id}/gene-index").json()["status"] == "none"
    before = {name: gene(api, dataset.id, name) for name in GENES}
    assert api.get(f"/datasets/{dataset.id}/gene-index").json()["status"] in ("building", "ready")
    assert wait_ready(api, dataset.id) == {"status": "ready", "progress": 1.0, "message": None}
    assert api.get(f"/datasets/{dataset.id}").json()["gene_index"]["status"] == "ready"
    for name in GENES:
        np.testing.assert_array_equal(gene(api, dataset.id, name), before[name])
        np.testing.assert_array_equal(before[name], scan_reference(csr_file, name))
    assert len(index_folders()) == 1


def test_gene_search_starts_the_build(csr_file, start_api):
    api, dataset = serve(csr_file, start_api)
    assert api.get(f"/datasets/{dataset.id}/genes?q=GENE0001").status == 200
    wait_ready(api, dataset.id)


def test_index_is_reused_after_a_restart_without_rebuilding(csr_file, start_api):
    api, dataset = serve(csr_file, start_api)
    gene(api, dataset.id, GENES[0])
    wait_ready(api, dataset.id)
    api.stop()
    [folder] = index_folders()
    stamp = os.stat(folder / "cells.bin")

    api, dataset = serve(csr_file, start_api)
    assert api.get(f"/datasets/{dataset.id}/gene-index").json()["status"] == "ready"
    np.testing.assert_array_equal(gene(api, dataset.id, GENES[2]),
                                  scan_reference(csr_file, GENES[2]))
    assert index_folders() == [folder]
    after = os.stat(folder / "cells.bin")
    assert (after.st_ino, after.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)


def test_index_is_rebuilt_when_the_file_changes(csr_file, start_api):
    api, dataset = serve(csr_file, start_api)
    gene(api, dataset.id, GENES[1])
    wait_ready(api, dataset.id)
    [old_folder] = index_folders()

    make_synthetic(csr_file, 3000, 500, genes_per_cell=60, seed=2)  # new content, same path
    assert api.get(f"/datasets/{dataset.id}/gene-index").json()["status"] == "none"
    np.testing.assert_array_equal(gene(api, dataset.id, GENES[1]),
                                  scan_reference(csr_file, GENES[1]))
    wait_ready(api, dataset.id)
    [new_folder] = index_folders()
    assert new_folder != old_folder
    for name in GENES:
        np.testing.assert_array_equal(gene(api, dataset.id, name), scan_reference(csr_file, name))


def test_concurrent_gene_requests_are_answered_while_the_index_builds(csr_file, start_api,
                                                                      monkeypatch):
    gate, building = threading.Event(), threading.Event()
    real_transpose = gene_index.transpose_rows
    calls = []

    def held_transpose(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first run: the build is under way
            building.set()
            assert gate.wait(120), "the test never released the build"
        return real_transpose(*args, **kwargs)

    monkeypatch.setattr(gene_index, "RUN_VALUES", 20_000)  # several runs in this small file
    monkeypatch.setattr(gene_index, "transpose_rows", held_transpose)  # holds the real build
    api, dataset = serve(csr_file, start_api)
    try:
        api.get(f"/datasets/{dataset.id}/genes?q=GENE")
        assert building.wait(60)
        names = [f"GENE{i:05d}" for i in range(0, 500, 25)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda n: gene(api, dataset.id, n), names))
        status = api.get(f"/datasets/{dataset.id}/gene-index").json()
        assert status["status"] == "building" and 0 < status["progress"] < 1
    finally:
        gate.set()
    for name, values in zip(names, answers):
        np.testing.assert_array_equal(values, scan_reference(csr_file, name))
    wait_ready(api, dataset.id)
    for name, values in zip(names, answers):
        np.testing.assert_array_equal(gene(api, dataset.id, name), values)


def open_paths() -> set[str]:
    """Files this process holds open or mapped (Linux /proc)."""
    fds = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
    with open("/proc/self/maps") as maps:
        mapped = {line.split(maxsplit=5)[-1].strip() for line in maps if "/" in line}
    return fds | mapped


def test_removing_a_dataset_closes_its_file(csr_file, start_api):
    api, dataset = serve(csr_file, start_api)
    gene(api, dataset.id, GENES[0])
    wait_ready(api, dataset.id)
    assert str(csr_file) in open_paths()
    api.registry.remove(dataset.id)
    assert str(csr_file) not in open_paths()
    assert api.get(f"/datasets/{dataset.id}").status == 404


def damaged_csr(tmp_path: Path) -> Path:
    """A CSR .h5ad whose index build fails: one cell names a gene past the last."""
    indptr = np.array([0, 2, 3, 4])
    indices = np.array([0, 1, 1, 7], dtype=np.int32)  # 7 is past the last of 3 genes
    data = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    return write_h5ad(tmp_path / "damaged.h5ad", obs_names=["a", "b", "c"],
                      var_names=["g0", "g1", "g2"], x_blocks=[(indptr, indices, data)])


def test_a_failed_build_is_reported_and_genes_are_still_served(tmp_path, start_api):
    path = damaged_csr(tmp_path)
    registry = DatasetRegistry()
    dataset = registry.add(path)
    api = start_api(registry)
    np.testing.assert_array_equal(gene(api, dataset.id, "g1"), [2.0, 3.0, 0.0])
    status = wait_for(lambda: (s := api.get(f"/datasets/{dataset.id}/gene-index").json())
                      ["status"] == "failed" and s, timeout=60, what="the build to fail")
    assert "damaged" in status["message"]
    np.testing.assert_array_equal(gene(api, dataset.id, "g0"), [1.0, 0.0, 0.0])


def _reader_and_x(path: Path):  # noqa: ANN202 - (DatasetReader, Source)
    source = open_local(path)
    reader = DatasetReader(source, source.identity())
    return reader, find_source(reader.meta, "X")


def test_waiting_for_the_index_builds_it_reports_progress_and_returns_it(csr_file, tmp_path):
    manager = gene_index.GeneIndexManager(tmp_path / "index")
    reader, x = _reader_and_x(csr_file)
    seen: list[float] = []
    built = manager.wait(reader, x, seen.append)
    assert built is manager.open(reader, x)
    assert manager.status(reader, x)["status"] == "ready"
    assert all(0.0 <= fraction <= 1.0 for fraction in seen)
    assert manager.wait(reader, x, seen.append) is built  # ready: no second build
    assert built.gene_sizes().shape == (x.info.shape[1],)


def test_waiting_for_a_build_that_fails_raises_its_message(tmp_path):
    path = damaged_csr(tmp_path)
    manager = gene_index.GeneIndexManager(tmp_path / "index")
    reader, x = _reader_and_x(path)
    with pytest.raises(gene_index.DatasetError, match="damaged"):
        manager.wait(reader, x, lambda fraction: None)
    assert manager.status(reader, x)["status"] == "failed"

