"""Saved selections: a sidecar next to the data (never the data file itself), or in the
app's data folder when that folder is read-only; listed and coloured like any obs
column, on this and on later opens; damaged or mismatched sidecars set aside."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from cellucid_desktop import paths
from cellucid_desktop.data.annotations import SIDECAR_SUFFIX
from tests.analysis.data import N_CELLS


@pytest.fixture
def data_file(pbmc_files, tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return Path(shutil.copy(pbmc_files["csr"], folder / "pbmc.h5ad"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """A folder nobody may create files in, root included (immutable attribute)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def save(api, dataset_id: str, key: str, categories: dict) -> dict:
    answer = api.post(f"/datasets/{dataset_id}/annotations", {"key": key,
                                                              "categories": categories})
    assert answer.status == 200, answer.body
    return answer.json()


def test_a_saved_selection_is_a_column_on_this_and_the_next_open(data_file, serve):
    before = digest(data_file)
    api, dataset_id = serve(data_file)
    assert api.get(f"/datasets/{dataset_id}/annotations").json() == {"columns": [],
                                                                     "message": None}
    listing = save(api, dataset_id, "my cells", {"T-ish": [0, 1, 2, 5], "B-ish": [5, 6]})
    assert listing == {"columns": [{"key": "my cells", "categories": ["T-ish", "B-ish"],
                                    "counts": [3, 2]}], "message": None}
    sidecar = data_file.with_name(data_file.name + SIDECAR_SUFFIX)
    assert sidecar.is_file() and digest(data_file) == before

    def check(api, dataset_id):
        document = api.get(f"/datasets/{dataset_id}").json()
        assert document["obs"][-1] == {"key": "my cells", "kind": "categorical",
                                       "n_categories": 2, "annotation": True}
        meta = api.get(f"/datasets/{dataset_id}/obs/my%20cells").json()
        assert (meta["categories"], meta["counts"], meta["n_missing"], meta["dtype"],
                meta["annotation"]) == (["T-ish", "B-ish"], [3, 2], N_CELLS - 5, "uint16", True)
        values = api.get(f"/datasets/{dataset_id}/obs/my%20cells/values")
        codes = np.frombuffer(values.body, dtype="<u2")
        expected = np.full(N_CELLS, 65535)
        expected[[0, 1, 2]], expected[[5, 6]] = 0, 1  # row 5: the last label wins
        np.testing.assert_array_equal(codes, expected)
        return values.headers["etag"]

    etag = check(api, dataset_id)
    api.stop()
    again, again_id = serve(data_file)  # a new server: the next launch
    assert check(again, again_id) == etag
    assert digest(data_file) == before


def test_replacing_and_deleting_columns_changes_their_values_and_etag(data_file, serve):
    api, dataset_id = serve(data_file)
    save(api, dataset_id, "sel", {"a": [1, 2]})
    first = api.get(f"/datasets/{dataset_id}/obs/sel/values")
    assert api.get(f"/datasets/{dataset_id}/obs/sel/values",
                   {"If-None-Match": first.headers["etag"]}).status == 304
    save(api, dataset_id, "sel", {"a": [3], "b": [4]})
    second = api.get(f"/datasets/{dataset_id}/obs/sel/values",
                     {"If-None-Match": first.headers["etag"]})
    assert second.status == 200 and second.headers["etag"] != first.headers["etag"]
    assert np.frombuffer(second.body, dtype="<u2")[[1, 3, 4]].tolist() == [65535, 0, 1]
    save(api, dataset_id, "other", {"x": [0]})
    listing = api.post(f"/datasets/{dataset_id}/annotations/sel/delete", b"",
                       {"Content-Type": ""}).json()
    assert [c["key"] for c in listing["columns"]] == ["other"]
    assert api.get(f"/datasets/{dataset_id}/obs/sel").status == 404
    assert api.post(f"/datasets/{dataset_id}/annotations/sel/delete", {}).status == 404
    api.post(f"/datasets/{dataset_id}/annotations/other/delete", {})
    assert not data_file.with_name(data_file.name + SIDECAR_SUFFIX).exists()


def test_a_saved_selection_can_be_the_group_of_a_comparison(data_file, serve):
    api, dataset_id = serve(data_file)
    save(api, dataset_id, "picked", {"in": list(range(0, 600)), "out": list(range(600, 900))})
    by_column = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"obs": "picked", "value": "in"}, "reference": {"obs": "picked", "value": "out"},
        "n": 10}).json()
    by_cells = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"cells": list(range(0, 600))}, "reference": {"cells": list(range(600, 900))},
        "n": 10}).json()
    assert by_column == by_cells and by_column["n_group"] == 600


@pytest.mark.parametrize("body, status, words", [
    ({"key": "cluster", "categories": {"a": [1]}}, 409, "already has an obs column"),
    ({"key": "a/b", "categories": {"a": [1]}}, 400, "cannot be used"),
    ({"key": "", "categories": {"a": [1]}}, 400, "non-empty"),
    ({"key": "ok", "categories": {}}, 400, "at least one category"),
    ({"key": "ok", "categories": {"a": [N_CELLS]}}, 400, "outside 0.."),
    ({"key": "ok", "categories": {"a": "1,2"}}, 400, "list of cell row numbers"),
    ({"key": "ok", "categories": {"a\u0000b": [1]}}, 400, "control characters"),
])
def test_bad_selections_are_refused_with_a_sentence(data_file, serve, body, status, words):
    api, dataset_id = serve(data_file)
    answer = api.post(f"/datasets/{dataset_id}/annotations", body)
    assert answer.status == status and words in answer.json()["error"], answer.body
    assert not data_file.with_name(data_file.name + SIDECAR_SUFFIX).exists()


def test_a_read_only_folder_keeps_selections_in_the_app_data_folder(data_file, serve):
    with read_only(data_file.parent):
        api, dataset_id = serve(data_file)
        save(api, dataset_id, "kept", {"a": [7, 8]})
        assert sorted(p.name for p in data_file.parent.iterdir()) == ["pbmc.h5ad"]
        stored = list((paths.data_dir() / "annotations").glob("*.h5"))
        assert len(stored) == 1
        api.stop()
        again, again_id = serve(data_file)
        meta = again.get(f"/datasets/{again_id}/obs/kept").json()
        assert meta["counts"] == [2]


def test_a_damaged_sidecar_is_set_aside_with_a_message(data_file, serve):
    sidecar = data_file.with_name(data_file.name + SIDECAR_SUFFIX)
    sidecar.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    api, dataset_id = serve(data_file)
    listing = api.get(f"/datasets/{dataset_id}/annotations").json()
    assert listing["columns"] == [] and "could not be used" in listing["message"]
    assert "damaged" in listing["message"] and not sidecar.exists()
    aside = list(data_file.parent.glob(f"{sidecar.name}.damaged-*"))
    assert len(aside) == 1 and aside[0].name.split(".damaged")[1] in listing["message"]
    assert data_file.name not in listing["message"]  # answers never name a local file
    assert api.get(f"/datasets/{dataset_id}").status == 200
    save(api, dataset_id, "fresh", {"a": [1]})  # a new sidecar starts
    assert sidecar.is_file()


def test_a_sidecar_made_for_other_cells_is_set_aside(data_file, serve, tmp_path):
    api, dataset_id = serve(data_file)
    save(api, dataset_id, "sel", {"a": [1, 2]})
    api.stop()
    sidecar = data_file.with_name(data_file.name + SIDECAR_SUFFIX)
    with h5py.File(sidecar, "r+") as h5:  # as if the cells of the file had been reordered
        h5.attrs["obs_names_sha256"] = "0" * 64
    again, again_id = serve(data_file)
    listing = again.get(f"/datasets/{again_id}/annotations").json()
    assert listing["columns"] == [] and "saved for other cells" in listing["message"]
    assert again.get(f"/datasets/{again_id}/obs/sel").status == 404
