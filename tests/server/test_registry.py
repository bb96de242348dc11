"""One registry, several datasets: ids unique and stable, local paths never published."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.synthetic import make_synthetic
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.server.reference import raw_request


@pytest.fixture(scope="module")
def plain_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file without uns['cellucid'], so its id comes from its name."""
    return make_synthetic(tmp_path_factory.mktemp("plain") / "Lung atlas (v2).h5ad", 300, 40,
                          genes_per_cell=8, seed=2)


def test_id_and_name_come_from_uns_cellucid(small_h5ad: Path) -> None:
    entry = DatasetRegistry().add(small_h5ad)
    assert (entry.id, entry.name) == ("small-test", "Small test")


def test_id_comes_from_the_file_name_when_uns_has_none(plain_h5ad: Path) -> None:
    entry = DatasetRegistry().add(plain_h5ad)
    assert (entry.id, entry.name) == ("Lung-atlas-v2", "Lung atlas (v2)")


def test_given_id_and_name_win(small_h5ad: Path) -> None:
    entry = DatasetRegistry().add(small_h5ad, dataset_id="my id!", name=" Mine ")
    assert (entry.id, entry.name) == ("my-id", "Mine")


def test_same_file_twice_keeps_one_entry(small_h5ad: Path, tmp_path: Path) -> None:
    registry = DatasetRegistry()
    first = registry.add(small_h5ad)
    link = tmp_path / "link.h5ad"
    link.symlink_to(small_h5ad)
    assert registry.add(link) is first
    assert registry.add(str(small_h5ad)) is first
    assert len(registry.all()) == 1


def test_ids_stay_unique_and_stable(small_h5ad: Path, tmp_path: Path) -> None:
    registry = DatasetRegistry()
    copies = []
    for i in range(3):
        copy = tmp_path / f"copy{i}.h5ad"
        shutil.copy(small_h5ad, copy)
        copies.append(registry.add(copy))
    assert [d.id for d in copies] == ["small-test", "small-test-2", "small-test-3"]
    assert registry.remove("small-test-2")
    assert not registry.remove("small-test-2")
    assert registry.get("small-test-3") is copies[2]
    assert registry.add(tmp_path / "copy2.h5ad").id == "small-test-3"
    assert [d.id for d in registry.all()] == ["small-test", "small-test-3"]


def test_unusable_file_is_not_registered(tmp_path: Path) -> None:
    registry = DatasetRegistry()
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(DatasetError):
        registry.add(bad)
    assert registry.all() == []


def test_several_datasets_are_each_listed_and_served(small_h5ad: Path, plain_h5ad: Path) -> None:
    registry = DatasetRegistry()
    registry.add(small_h5ad)
    registry.add(plain_h5ad)
    with ServerThread(registry, token=None) as server:
        answer = raw_request(server.port, "GET", "/_cellucid/datasets")
        document = json.loads(answer.body)
        assert [d["id"] for d in document["datasets"]] == ["small-test", "Lung-atlas-v2"]
        for entry, path in zip(document["datasets"], (small_h5ad, plain_h5ad)):
            file = entry["anndata"]["file"]
            assert file == {"url": f"_cellucid/anndata/{entry['id']}.h5ad", "kind": "h5ad",
                            "layout": "file", "size": path.stat().st_size}
            store = raw_request(server.port, "GET", "/" + file["url"], [("Range", "bytes=-64")])
            assert store.status == 206 and store.body == path.read_bytes()[-64:]
        for path in (small_h5ad, plain_h5ad):  # the local path is never published
            assert path.name.encode() not in answer.body
            assert str(path.parent).encode() not in answer.body
        health = json.loads(raw_request(server.port, "GET", "/_cellucid/health").body)
        assert (health["n_cells"], health["n_genes"]) == (3000, 500)  # the first dataset


def test_the_same_file_opened_from_several_threads_at_once_gets_one_id(small_h5ad) -> None:
    import threading

    registry = DatasetRegistry()
    start = threading.Barrier(6)
    ids: list[str] = []

    def add() -> None:
        start.wait()
        ids.append(registry.add(small_h5ad).id)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(set(ids)) == 1 and len(registry.all()) == 1


def test_a_symbolic_link_loop_is_refused_with_a_sentence(tmp_path: Path) -> None:
    loop = tmp_path / "loop.h5ad"
    loop.symlink_to(tmp_path / "back.h5ad")
    (tmp_path / "back.h5ad").symlink_to(loop)
    with pytest.raises(DatasetError) as err:
        DatasetRegistry().add(loop)
    assert str(loop) in str(err.value) and "\n" not in str(err.value)


def test_a_changed_file_is_read_again_and_an_unusable_one_says_why(small_h5ad: Path,
                                                                   plain_h5ad: Path,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "changing.h5ad"
    shutil.copy(small_h5ad, path)
    registry = DatasetRegistry()
    first = registry.add(path)
    assert registry.refresh(first) is first  # unchanged: the same entry, no re-read
    path.write_bytes(plain_h5ad.read_bytes())
    second = registry.refresh(first)
    assert (second.id, second.name, second.meta.n_cells) == (first.id, first.name, 300)
    assert registry.get(first.id) is second
    path.write_bytes(b"garbage")
    with pytest.raises(DatasetError) as err:
        registry.refresh(second)
    assert registry.public_message(str(err.value)).startswith(f"The file of dataset '{first.id}'")
    assert str(tmp_path) not in registry.public_message(str(err.value))
    path.unlink()
    with pytest.raises(DatasetError, match="no longer readable"):
        registry.refresh(second)
