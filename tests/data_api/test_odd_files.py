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
import pandas as pd
import pytest

from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.data.identity import is_valid_id
from cellucid_desktop.data.local_source import open_local
from cellucid_desktop.data.obs import MAX_CATEGORIES
from cellucid_desktop.data.reader import DatasetReader
from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.conftest import Api, q
from tests.data_api.expected import matrix_column, obs_reference
from tests.data_api.odd_files import CASES, DAMAGED, build_all, build_damaged
from tests.helpers import wait_for

# anndata 0.12 cannot write datetime or pandas Float64 columns
REFUSED_BY_ANNDATA = {"datetime_column", "nullable_float_column"}
GENES_PER_SOURCE = 4
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


def _matrix(reference: ad.AnnData, source: str):
    if source == "X":
        return reference.X, list(reference.var_names)
    if source == "raw":
        return reference.raw.X, list(reference.raw.var_names)
    return reference.layers[source.removeprefix("layers/")], list(reference.var_names)


def _expected_embeddings(reference: ad.AnnData) -> set[str]:
    return {key for key, value in reference.obsm.items()
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[1] >= 2
            and value.dtype.kind in "iuf"}


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


def _check_obs(api: Api, base: str, ds: dict, reference: ad.AnnData) -> None:
    assert [c["key"] for c in ds["obs"]] == list(reference.obs.columns)
    for column in ds["obs"]:
        series = reference.obs[column["key"]]
        meta = api.get(f"{base}/obs/{q(column['key'])}")
        values = api.get(f"{base}/obs/{q(column['key'])}/values")
        if isinstance(series.dtype, pd.CategoricalDtype) and \
                len(series.cat.categories) > MAX_CATEGORIES:
            assert (meta.status, values.status) == (422, 422), column
            assert "pick another column" in meta.json()["error"]
            continue
        assert meta.status == 200 and values.status == 200, (column, meta.body, values.body)
        kind, expected, categories = obs_reference(series)
        described = meta.json()
        assert (described["kind"], column["kind"]) == (kind, kind), column
        assert described["categories"] == categories, column
        served = np.frombuffer(values.body, dtype="<u2" if categories is not None else "<f4")
        np.testing.assert_array_equal(served, expected, err_msg=column["key"])
        if categories is None:
            finite = expected[np.isfinite(expected)]
            assert described["min"] == (float(finite.min()) if finite.size else None)
            assert described["n_missing"] == int(np.isnan(expected).sum())


def _check_gene(api: Api, base: str, source: str, name: str, names: list[str], matrix) -> None:
    answer = api.get(f"{base}/genes/{q(name)}?source={q(source)}")
    assert answer.status == 200, (source, name, answer.body)
    index = int(answer.headers["x-gene-index"])
    assert index == names.index(name)
    expected = matrix_column(matrix, index)
    np.testing.assert_allclose(np.frombuffer(answer.body, dtype="<f4"), expected, rtol=1e-6,
                               err_msg=f"{source} {name}")
    finite = expected[np.isfinite(expected)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    assert (float(answer.headers["x-min"]), float(answer.headers["x-max"])) == (low, high)


def _check_genes(api: Api, base: str, ds: dict, reference: ad.AnnData) -> None:
    """A few genes of every source, by scan or column; then, once the default source's
    gene index is built, the same genes again through the index."""
    picked = {}
    for source in ds["expression_sources"]:
        matrix, names = _matrix(reference, source["id"])
        listed = api.get(f"{base}/genes?limit=1000&source={q(source['id'])}")
        assert listed.status == 200, listed.body
        assert [g["name"] for g in listed.json()["genes"]] == names
        picks = list(dict.fromkeys(names[:GENES_PER_SOURCE] + names[-1:]))
        picks += [n for n in names if not n.isascii() or " " in n or "/" in n]
        picked[source["id"]] = [n for n in picks if n]  # an empty name has no path of its own
        for name in picked[source["id"]]:
            _check_gene(api, base, source["id"], name, names, matrix)
    status = wait_for(lambda: api.get(f"{base}/gene-index").json()["status"] != "building",
                      timeout=60, what="the gene index") and api.get(f"{base}/gene-index").json()
    if not ds["expression_sources"]:
        assert status["status"] == "none"
        return
    assert status["status"] == "ready", status
    default = ds["default_source"]
    matrix, names = _matrix(reference, default)
    for name in picked[default]:
        _check_gene(api, base, default, name, names, matrix)


@pytest.mark.parametrize("case", sorted(CASES))
def test_odd_file_registers_cleanly_and_every_part_equals_anndata(odd, case: str) -> None:
    api, built = odd
    if case not in built:
        assert case in REFUSED_BY_ANNDATA, f"{case} was not written"
        return
    path, written = built[case]
    dataset = _check_registration(api, path)
    assert dataset is not None, f"{case} was refused"
    reference = _reference(path, written)
    base = f"/datasets/{q(dataset.id)}"
    described = api.get(base)
    assert described.status == 200, described.body
    ds = described.json()
    assert (ds["n_cells"], ds["n_genes"]) == reference.shape
    assert {e["key"] for e in ds["embeddings"]} == _expected_embeddings(reference)
    for emb in ds["embeddings"]:
        answer = api.get(f"{base}/embeddings/{q(emb['key'])}")
        assert answer.status == 200, answer.body
        expected = np.asarray(reference.obsm[emb["key"]][:, :emb["dims"]], dtype=np.float32)
        served = np.frombuffer(answer.body, dtype="<f4").reshape(-1, emb["dims"])
        np.testing.assert_array_equal(served, expected)
    _check_obs(api, base, ds, reference)
    _check_genes(api, base, ds, reference)
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
