"""Odd but legal `.h5ad` files (tests/data_api/odd_files.py) through one real server.

Each file registers (or is refused with one clean sentence), and every embedding, obs
column and a few genes per expression source are served with the values anndata reads.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.identity import is_valid_id
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.conftest import Api, q
from tests.data_api.checks import check_served
from tests.data_api.odd_files import CASES, DAMAGED, build_all, build_damaged

# anndata 0.12 cannot write datetime or pandas Float64 columns
REFUSED_BY_ANNDATA = {"datetime_column", "nullable_float_column"}
REFUSED_DAMAGED = {"column_order_names_a_ghost", "categories_missing"}  # unreadable obs


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict]]:
    """Every odd file, written once, and one server publishing whatever registers."""
    folder = tmp_path_factory.mktemp("odd-files")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata warns about duplicate names etc.
        built = build_all(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("odd-cache")))
        api = Api(DatasetRegistry())
        try:
            yield api, built
        finally:
            api.stop()


def _reference(path: Path, written: ad.AnnData) -> ad.AnnData:
    """anndata's reading of the file; the written object where anndata cannot read it
    back (top-level groups it does not know)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return ad.read_h5ad(path)
        except TypeError:
            return written


def _check_registration(api: Api, path: Path):
    try:
        dataset = api.registry.add(path)
    except DatasetError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message
        return None
    assert is_valid_id(dataset.id), dataset.id
    assert dataset.name and dataset.name == dataset.name.strip()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in dataset.name)
    return dataset


@pytest.mark.parametrize("case", sorted(CASES))
def test_odd_file_registers_cleanly_and_every_part_equals_anndata(odd, case: str) -> None:
    api, built = odd
    if case not in built:
        assert case in REFUSED_BY_ANNDATA, f"{case} was not written"
        return
    path, written = built[case]
    dataset = _check_registration(api, path)
    assert dataset is not None, f"{case} was refused"
    check_served(api, dataset, _reference(path, written))
    assert dataset.id in [d["id"] for d in api.get("/datasets").json()["datasets"]]
    listed = api.get_url("/_cellucid/datasets")
    assert listed.status == 200 and dataset.id in listed.body.decode()
    store = api.get_url(f"/_cellucid/anndata/{q(dataset.route_name)}", {"Range": "bytes=0-7"})
    assert store.status == 206 and store.body == path.read_bytes()[:8]


def test_only_unwritable_dtypes_are_left_out_of_the_cases(odd) -> None:
    assert set(CASES) - set(odd[1]) == REFUSED_BY_ANNDATA


@pytest.mark.parametrize(("case", "expected_id", "expected_name"), [
    ("uns_spaces_id", "my-data-set", "My data"),
    ("uns_unicode", "donnees", "Données 🧬 ß"),  # ß has no ASCII decomposition
    ("uns_invalid_id", "ds-CON", "ds-CON"),  # a name of invisible characters: the id
    ("uns_not_strings", "uns_not_strings", "uns_not_strings"),
    ("uns_group_id", "uns_group_id", "uns_group_id"),
])
def test_odd_uns_cellucid_identity_becomes_a_valid_id_and_clean_name(
        odd, case: str, expected_id: str, expected_name: str) -> None:
    dataset = DatasetRegistry().add(odd[1][case][0])
    assert (dataset.id, dataset.name) == (expected_id, expected_name)


def test_an_over_long_uns_cellucid_id_is_cut_to_180_characters(odd) -> None:
    dataset = DatasetRegistry().add(odd[1]["uns_long"][0])
    assert dataset.id == "x" * 180 and dataset.name == "x" * 200


@pytest.mark.parametrize(("case", "direct"), [
    ("gzip", False), ("lzf", False), ("shuffle_gzip_csc", False),
    ("chunked_uncompressed", True), ("chunked_small_chunks", True),
    ("x_csr_int64_indices", True),
])
def test_positioned_reads_are_used_only_where_the_bytes_are_plain(odd, case, direct) -> None:
    path = odd[1][case][0]
    source = open_local(path)
    reader = DatasetReader(source, source.identity())
    try:
        for name in ("X/indices", "X/data"):
            array = reader.flat(name)
            assert array.direct is direct
            with h5py.File(path, "r") as h5:
                expected = h5[name][()]
            np.testing.assert_array_equal(array.whole(), expected)
            every_third = np.arange(0, array.size, 3)
            np.testing.assert_array_equal(array.take(every_third), expected[every_third])
    finally:
        reader.close()


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_damaged(tmp_path_factory.mktemp("damaged-files"))


def _served_or_refused(answer, length: int) -> None:
    """200 with a payload of the right length, or a 404/422 JSON sentence: never a 500."""
    if answer.status == 200:
        assert len(answer.body) == length
    else:
        assert answer.status in (404, 422) and answer.json()["error"], answer.body


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_file_is_refused_with_a_sentence_or_served_without_a_500(
        odd, damaged, case: str) -> None:
    api = odd[0]
    dataset = _check_registration(api, damaged[case])
    assert (dataset is None) == (case in REFUSED_DAMAGED)
    if dataset is None:
        return
    base = f"/datasets/{q(dataset.id)}"
    described = api.get(base)
    assert described.status == 200, described.body
    ds = described.json()
    n = ds["n_cells"]
    for emb in ds["embeddings"]:
        _served_or_refused(api.get(f"{base}/embeddings/{q(emb['key'])}"), 4 * n * emb["dims"])
    for column in ds["obs"]:
        meta = api.get(f"{base}/obs/{q(column['key'])}")
        _served_or_refused(meta, len(meta.body))
        width = 2 if meta.status == 200 and meta.json()["dtype"] == "uint16" else 4
        _served_or_refused(api.get(f"{base}/obs/{q(column['key'])}/values"), width * n)
    for source in ds["expression_sources"]:
        listed = api.get(f"{base}/genes?limit=2&source={q(source['id'])}")
        _served_or_refused(listed, len(listed.body))
        for gene in listed.json().get("genes", []):
            _served_or_refused(api.get(f"{base}/genes/{q(gene['name'])}?source="
                                       f"{q(source['id'])}"), 4 * n)
