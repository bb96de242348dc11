"""RangeFile: h5py reads a served .h5ad through HTTP Range as it reads the local file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from cellucid_desktop.remote.traffic import counting
from cellucid_desktop.remote.range_file import RangeFile, RemoteFileError
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.remote.servers import ServeProcess

STORE = "/_cellucid/anndata/remote-data.h5ad"


@pytest.fixture()
def served_copy(tmp_path: Path, small_h5ad: Path) -> Iterator[tuple[str, Path]]:
    """Our server on a private copy of the file (so a test may change it)."""
    copy = tmp_path / "copy.h5ad"
    copy.write_bytes(small_h5ad.read_bytes())
    registry = DatasetRegistry()
    registry.add(copy, dataset_id="remote-data", name="Remote data")
    server = ServerThread(registry, token=None).start()  # RangeFile reads token-less remotes
    yield f"{server.url}{STORE}", copy
    server.stop()


def test_h5py_reads_cellucid_095s_store_like_the_local_file(g2_remote: ServeProcess,
                                                            small_h5ad: Path) -> None:
    remote = RangeFile(f"http://127.0.0.1:{g2_remote.port}{STORE}", block_size=64 * 1024)
    with h5py.File(remote, "r") as far, h5py.File(small_h5ad, "r") as near:
        assert np.array_equal(far["obsm/X_umap"][:], near["obsm/X_umap"][:])
        assert np.array_equal(far["X/indptr"][:], near["X/indptr"][:])
        assert np.array_equal(far["X/data"][100:5000], near["X/data"][100:5000])
    assert remote.size == small_h5ad.stat().st_size
    assert 0 < remote.bytes_fetched <= remote.size + remote.block_size
    remote.close()


def test_reads_are_exact_at_block_edges_and_the_end(served_copy: tuple[str, Path]) -> None:
    url, path = served_copy
    data = path.read_bytes()
    remote = RangeFile(url, block_size=1000, max_blocks=3)
    for offset, length in [(0, 10), (995, 10), (1000, 1000), (2500, 4000),
                           (len(data) - 5, 100), (len(data), 10)]:
        remote.seek(offset)
        assert remote.read(length) == data[offset:offset + length]
    assert len(remote._blocks) <= 3  # the cache stays bounded
    remote.seek(-7, 2)
    assert remote.read() == data[-7:]
    remote.close()


def test_a_replaced_file_is_reported_not_mixed(served_copy: tuple[str, Path]) -> None:
    url, path = served_copy
    remote = RangeFile(url, block_size=1000)
    remote.read(10)
    path.write_bytes(path.read_bytes()[::-1])  # new content, new ETag
    remote.seek(50_000)
    with pytest.raises(RemoteFileError, match="changed"):
        remote.read(10)
    remote.close()


def test_each_request_is_charged_its_own_reads(served_copy: tuple[str, Path]) -> None:
    import threading

    url, _ = served_copy
    remote = RangeFile(url, block_size=4096)
    other: list[int] = []

    def elsewhere() -> None:
        with counting() as account:
            remote.pread(100_000, 10_000)
        other.append(account[0])

    with counting() as mine:
        remote.pread(0, 100)
        worker = threading.Thread(target=elsewhere)
        worker.start()
        worker.join()
    assert mine[0] == 4096  # one block; the size probe was made before any account
    assert other[0] >= 10_000 and remote.bytes_fetched == 1 + 4096 + other[0]
    remote.close()


def test_spilled_blocks_are_read_from_the_remote_once(served_copy: tuple[str, Path],
                                                      tmp_path: Path) -> None:
    url, path = served_copy
    data = path.read_bytes()
    spill = tmp_path / "spill"
    spill.mkdir()
    remote = RangeFile(url, block_size=4096, max_blocks=1, spill_dir=spill)
    for _ in range(3):
        remote.seek(0)
        assert remote.read() == data
    assert remote.bytes_fetched == 1 + len(data)  # size probe + every byte once
    assert not list(spill.iterdir())  # the spill file is unlinked from the start
    remote.close()
