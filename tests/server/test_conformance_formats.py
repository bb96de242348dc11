"""Our server against the real `cellucid serve` 0.9.5 on the other stores it serves: Zarr
folders (format 2 and 3, with and without consolidated metadata), zipped Zarr, MuData
(with and without a chosen modality) and loom. The same raw requests go to both and the
answers are compared as in test_conformance.py: identity documents, store keys and their
404s, generated consolidated metadata byte for byte with its ETag, ranges and
conditional requests on keys and files."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.formats.stores import Case
from tests.server.reference import Pair, assert_same

DATASET_ID, DATASET_NAME = "fmt-data", "Format data"

PAIRS = {  # pair name -> (format case, modality given to both servers)
    "zarr-v2": ("zarr-v2-folder", None),
    "zarr-v2-loose": ("zarr-v2-unconsolidated", None),
    "zarr-v3": ("zarr-v3-folder", None),
    "zarr-v3-loose": ("zarr-v3-unconsolidated", None),
    "zarr-zip": ("zarr-v3-zip", None),
    "zarr-zip-nested": ("zarr-v3-zip-in-a-folder", None),
    "h5mu": ("h5mu-citeseq-rna", None),
    "h5mu-prot": ("h5mu-citeseq-prot", "prot"),
    "loom": ("loom-loompy", None),
}
FOLDERS = ["zarr-v2", "zarr-v2-loose", "zarr-v3", "zarr-v3-loose"]
FILES = {"zarr-zip": ".zarr.zip", "zarr-zip-nested": ".zarr.zip", "h5mu": ".h5mu",
         "h5mu-prot": ".h5mu", "loom": ".loom"}


@pytest.fixture(scope="module")
def pairs(format_cases: dict[str, Case]) -> Iterator[dict[str, tuple[Pair, Case]]]:
    started: dict[str, tuple[Pair, Case]] = {}
    try:
        for name, (case_name, modality) in PAIRS.items():
            case = format_cases[case_name]
            started[name] = (Pair(case.path, DATASET_ID, DATASET_NAME, modality=modality), case)
        yield started
    finally:
        for pair, _ in started.values():
            pair.stop()


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("route", ["/_cellucid/health", "/_cellucid/info",
                                   "/_cellucid/datasets"])
def test_identity_documents_name_the_format_like_cellucid(pairs, name: str, route: str) -> None:
    pair, _ = pairs[name]
    theirs, ours = pair.both("GET", route)
    assert_same(theirs, ours)


def _keys(case: Case) -> list[str]:
    """Store keys to ask for: root documents (stored or generated), a group's and an
    array's metadata, a chunk, and keys that are absent."""
    v3 = (case.path / "zarr.json").exists()
    chunk = "X/data/c/0" if v3 else "X/data/0"
    meta = (["zarr.json", "obs/zarr.json", "X/data/zarr.json"] if v3
            else [".zgroup", ".zattrs", ".zmetadata", "obs/.zattrs", "X/data/.zarray"])
    return meta + [chunk, "nope", "X/data/99", ".zmetadata" if v3 else "zarr.json", "obs"]


@pytest.mark.parametrize("name", FOLDERS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_folder_keys_answer_like_cellucid(pairs, name: str, method: str) -> None:
    pair, case = pairs[name]
    for key in _keys(case):
        theirs, ours = pair.both(method, f"/_cellucid/anndata/{DATASET_ID}.zarr/{key}")
        assert_same(theirs, ours), key


@pytest.mark.parametrize("name", ["zarr-v2-loose", "zarr-v3-loose"])
def test_generated_consolidated_metadata_is_cellucids_byte_for_byte(pairs, name: str) -> None:
    pair, case = pairs[name]
    key = ".zmetadata" if name == "zarr-v2-loose" else "zarr.json"
    route = f"/_cellucid/anndata/{DATASET_ID}.zarr/{key}"
    theirs, ours = pair.both("GET", route)
    assert_same(theirs, ours)
    assert ours.body == theirs.body and json.loads(ours.body)
    etag = ours.header("etag")
    for headers in ([("If-None-Match", etag)], [("Range", "bytes=0-99")],
                    [("Range", "bytes=10-"), ("If-Range", etag)],
                    [("Range", "bytes=10-19"), ("If-Range", '"stale"')],
                    [("Range", f"bytes={len(ours.body)}-")]):
        assert_same(*pair.both("GET", route, headers))


@pytest.mark.parametrize("name", FOLDERS[:1] + FOLDERS[3:])
@pytest.mark.parametrize("path", [
    "{id}.zarr", "{id}.zarr/", "{id}.zarr//zarr.json", "{id}.zarr/./.zgroup",
    "{id}.zarr/obs/../.zgroup", "{id}.zarr/%2e%2e/x", "{id}.zarr/..", "{id}.zarr/X%2Fdata",
    "{id}.zarr/X\\data", "{id}.zarr/%00", "{id}.h5ad", "{id}.zarr.zip", "{id}.zarr/%FF",
    "{id}.ZARR/.zgroup", "{id}.zarr/obs/_index/.zarray/x",
])
def test_odd_folder_routes_answer_like_cellucid(pairs, name: str, path: str) -> None:
    pair, _ = pairs[name]
    assert_same(*pair.both("GET", "/_cellucid/anndata/" + path.format(id=DATASET_ID)))


@pytest.mark.parametrize("name", FOLDERS[:1])
def test_conditional_and_range_requests_on_a_chunk_answer_like_cellucid(pairs, name) -> None:
    pair, case = pairs[name]
    route = f"/_cellucid/anndata/{DATASET_ID}.zarr/{_keys(case)[5]}"
    etag = pair.both("HEAD", route)[1].header("etag")
    for headers in ([("Range", "bytes=0-9")], [("Range", "bytes=-5")], [("If-None-Match", etag)],
                    [("Range", "bytes=999999-")], [("Range", "bytes=0-1"), ("If-Range", etag)]):
        assert_same(*pair.both("GET", route, headers))


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("headers", [[], [("Range", "bytes=0-15")], [("Range", "bytes=-7")]],
                         ids=["whole", "range", "suffix"])
def test_file_stores_answer_like_cellucid(pairs, name: str, headers: list) -> None:
    pair, case = pairs[name]
    theirs, ours = pair.both("GET", f"/_cellucid/anndata/{DATASET_ID}{FILES[name]}", headers)
    assert_same(theirs, ours)
    if not headers:
        assert ours.body == case.path.read_bytes()


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("ending", [".h5ad", ".zarr", ".zarr/zarr.json", "", ".zip"])
def test_other_endings_of_a_file_store_are_404_like_cellucid(pairs, name: str,
                                                            ending: str) -> None:
    pair, _ = pairs[name]
    if FILES[name] == ending:
        return
    assert_same(*pair.both("GET", f"/_cellucid/anndata/{DATASET_ID}{ending}"))
