"""Wrong or half-written stores answer with one sentence naming them, as bad `.h5ad` files
do (tests/data_api/test_odd_files.py): at registration, or, for damage only a read can
find (a chunk that does not decompress), as a 422 sentence from the data API."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import h5py
import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.conftest import q
from tests.formats.stores import Case


def _refused(path: Path, modality: str | None = None) -> str:
    with pytest.raises(DatasetError) as err:
        DatasetRegistry().add(path, modality=modality)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert str(path) in message, message
    return message


def _copy(case: Case, folder: Path) -> Path:
    target = folder / case.path.name
    return Path(shutil.copytree(case.path, target) if case.path.is_dir()
                else shutil.copy(case.path, target))


@pytest.mark.parametrize(("name", "removed", "words"), [
    ("zarr-v2-folder", [".zgroup", ".zattrs", ".zmetadata"], "no zarr.json or .zgroup"),
    ("zarr-v2-folder", [".zgroup", ".zmetadata"], "half-written"),
    ("zarr-v3-folder", ["zarr.json"], "no zarr.json or .zgroup"),
])
def test_a_zarr_folder_without_its_root_metadata_is_refused(format_cases, tmp_path, name,
                                                            removed, words) -> None:
    store = _copy(format_cases[name], tmp_path)
    for key in removed:
        (store / key).unlink()
    assert words in _refused(store)


def test_a_zarr_folder_with_damaged_root_metadata_is_refused(format_cases, tmp_path) -> None:
    store = _copy(format_cases["zarr-v3-unconsolidated"], tmp_path)
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gro')
    assert "damaged" in _refused(store)


def test_a_zarr_store_that_is_not_anndata_is_refused(format_cases, tmp_path) -> None:
    import zarr

    store = tmp_path / "plain.zarr"
    zarr.open_group(store, mode="w").create_array("matrix", shape=(3, 3), dtype="f4")
    assert "not AnnData" in _refused(store)


def test_a_plain_folder_is_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert "is a folder, not a dataset" in _refused(tmp_path)


def test_a_zip_that_holds_no_store_is_refused(tmp_path) -> None:
    path = tmp_path / "photos.zarr.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "not a store")
    assert "holds no Zarr store" in _refused(path)


def test_a_truncated_zip_is_refused(format_cases, tmp_path) -> None:
    data = format_cases["zarr-v3-zip"].path.read_bytes()
    path = tmp_path / "cut.zarr.zip"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _refused(path)


def test_a_mudata_without_modalities_is_refused(format_cases, tmp_path) -> None:
    path = _copy(format_cases["h5mu-citeseq-rna"], tmp_path)
    with h5py.File(path, "r+") as h5:
        for name in list(h5["mod"]):
            del h5["mod"][name]
    assert "without any modality" in _refused(path)


def test_a_mudata_without_a_mod_group_is_refused(format_cases, tmp_path) -> None:
    path = _copy(format_cases["h5mu-citeseq-rna"], tmp_path)
    with h5py.File(path, "r+") as h5:
        del h5["mod"]
    assert "no mod group" in _refused(path)


def test_a_mudata_sharing_features_is_refused(format_cases, tmp_path) -> None:
    path = _copy(format_cases["h5mu-citeseq-rna"], tmp_path)
    with h5py.File(path, "r+") as h5:
        h5.attrs["axis"] = 1
    assert "shares features" in _refused(path)


def test_an_unknown_modality_is_refused_naming_the_ones_there(format_cases) -> None:
    message = _refused(format_cases["h5mu-citeseq-rna"].path, modality="atac")
    assert "'atac'" in message and "rna, prot" in message


def test_a_loom_without_a_matrix_is_refused(format_cases, tmp_path) -> None:
    path = _copy(format_cases["loom-loompy"], tmp_path)
    with h5py.File(path, "r+") as h5:
        del h5["matrix"]
    assert "no expression matrix" in _refused(path)


def test_a_damaged_chunk_is_a_sentence_not_a_500(format_cases, tmp_path, start_api) -> None:
    store = _copy(format_cases["zarr-v2-dense"], tmp_path)
    chunk = next(p for p in sorted((store / "X").iterdir()) if not p.name.startswith("."))
    chunk.write_bytes(b"\x00garbage" * 8)
    registry = DatasetRegistry()
    dataset = registry.add(store)
    api = start_api(registry)
    answer = api.get(f"/datasets/{q(dataset.id)}/genes/g0")
    assert answer.status == 422, answer.body
    message = answer.json()["error"]
    assert "damaged" in message and str(tmp_path) not in message
    assert api.get(f"/datasets/{q(dataset.id)}/obs/batch/values").status == 200


def test_a_zarr_store_whose_metadata_breaks_after_opening_answers_500_text(
        format_cases, tmp_path, start_api) -> None:
    store = _copy(format_cases["zarr-v2-unconsolidated"], tmp_path)
    registry = DatasetRegistry()
    dataset = registry.add(store)
    api = start_api(registry)
    (store / ".zattrs").write_text("{broken")
    answer = api.get_url(f"/_cellucid/anndata/{dataset.route_name}/.zmetadata")
    assert answer.status == 500 and b"damaged" in answer.body
    assert str(tmp_path).encode() not in answer.body
    document = json.loads(api.get_url("/_cellucid/datasets").body)
    assert document["datasets"][0]["anndata"]["file"]["layout"] == "folder"
