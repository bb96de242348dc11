"""Zarr (format 2 and 3, folders and zips), MuData modalities and loom files, written by
their own libraries, served through the data API with the values those libraries read,
and published on the store routes the way cellucid 0.9.5 publishes them."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from tests.data_api.checks import check_served
from tests.data_api.conftest import q
from tests.formats.stores import BUILDERS, FIXTURES, Case
from tests.helpers import wait_for

CASE_NAMES = ["zarr-v2-folder", "zarr-v2-zip", "zarr-v2-unconsolidated", "zarr-v3-folder",
              "zarr-v3-zip", "zarr-v3-unconsolidated", "zarr-v3-zip-in-a-folder",
              "zarr-v3-sharded", "zarr-v2-dense", "zarr-v3-dense", "zarr-v2-csc",
              "zarr-v3-csc", "zarr-v2-no-x", "zarr-v3-no-x",
              "anndata-0.8.0-full-zip", "anndata-0.8.0-full-folder",
              "anndata-0.10.9-full-zip", "anndata-0.10.9-full-folder",
              "anndata-0.10.9-csc-noobs-folder", "anndata-0.8.0-dense-nullable-folder",
              "anndata-0.10.9-no-x-zip",
              "h5mu-citeseq-rna", "h5mu-citeseq-prot", "h5mu-three-gex", "h5mu-three-atac",
              "h5mu-three-hto", "mudata-zarr-prot", "loom-loompy", "loom-anndata"]


def test_every_builder_and_committed_store_is_covered(format_cases: dict[str, Case]) -> None:
    assert set(format_cases) >= set(CASE_NAMES)
    assert {"zarr", "mudata", "loom"} == set(BUILDERS)
    committed = {p.name for p in FIXTURES.glob("anndata-*.zarr.zip")}
    assert {"anndata-0.8.0-full.zarr.zip", "anndata-0.10.9-full.zarr.zip"} <= committed


@pytest.mark.parametrize("name", CASE_NAMES)
def test_each_format_serves_every_part_equal_to_its_own_library(format_cases, formats_api,
                                                                name: str) -> None:
    case = format_cases[name]
    dataset = formats_api.registry.add(case.path, modality=case.modality)
    assert dataset.source.kind == case.kind
    ds = check_served(formats_api, dataset, case.reference)
    listed = json.loads(formats_api.get_url("/_cellucid/datasets").body)["datasets"]
    entry = next(e for e in listed if e["id"] == dataset.id)
    store = entry["anndata"]["file"]
    assert store["kind"] == case.kind
    assert entry["anndata"]["defaults"] == ({"modality": case.modality} if case.modality else {})
    if case.path.is_dir():
        assert store["layout"] == "folder" and store["url"].endswith(".zarr/")
        assert "size" not in store
        v3 = (case.path / "zarr.json").exists()
        key = "zarr.json" if v3 else ".zmetadata"  # consolidated, even where not stored
        answer = formats_api.get_url("/" + store["url"] + key)
        assert answer.status == 200, answer.body
        document = json.loads(answer.body)
        nodes = document["consolidated_metadata"]["metadata"] if v3 else document["metadata"]
        assert ("obs" if v3 else "obs/.zattrs") in nodes
        assert formats_api.get_url("/" + store["url"] + "no/such/key").status == 404
    else:
        assert store["size"] == case.path.stat().st_size
        answer = formats_api.get_url("/" + store["url"], {"Range": "bytes=0-3"})
        assert answer.status == 206 and answer.body == case.path.read_bytes()[:4]
    folder = str(case.path.parent)
    assert folder not in json.dumps(ds) and folder not in json.dumps(listed)


@pytest.mark.parametrize("name", ["zarr-v2-folder", "zarr-v3-zip", "h5mu-citeseq-rna"])
def test_a_csr_source_gets_its_gene_index_built_from_chunks(format_cases, formats_api,
                                                            name: str) -> None:
    """The gene index is built from a compressed Zarr store's chunks (never the whole
    matrix at once); genes read through it equal the scan."""
    case = format_cases[name]
    dataset = formats_api.registry.add(case.path, modality=case.modality)
    base = f"/datasets/{q(dataset.id)}"
    described = formats_api.get(base).json()
    assert described["expression_sources"][0]["layout"] == "csr"
    formats_api.get(f"{base}/genes?q=")  # a search starts the build
    wait_for(lambda: formats_api.get(f"{base}/gene-index").json()["status"] == "ready",
             timeout=60, what="the gene index")
    for gene in list(case.reference.var_names[:3]):
        answer = formats_api.get(f"{base}/genes/{q(gene)}")
        column = case.reference[:, gene].X
        expected = np.asarray(column.toarray() if hasattr(column, "toarray") else column,
                              dtype=np.float32).reshape(-1)
        np.testing.assert_array_equal(np.frombuffer(answer.body, dtype="<f4"), expected)


def test_mudata_modalities_are_separate_datasets_of_one_file(format_cases, formats_api) -> None:
    case = format_cases["h5mu-citeseq-rna"]
    rna = formats_api.registry.add(case.path)  # no choice: the expression modality
    prot = formats_api.registry.add(case.path, modality="prot")
    assert (rna.source.modality, prot.source.modality) == ("rna", "prot")
    assert rna.source.modalities == prot.source.modalities == ("rna", "prot")
    assert rna.id != prot.id and rna.name.endswith("(rna)") and prot.name.endswith("(prot)")
    assert formats_api.registry.add(case.path, modality="rna") is rna
    one = formats_api.get(f"/datasets/{q(rna.id)}/obs/{q('joint_cluster')}/values")
    other = formats_api.get(f"/datasets/{q(prot.id)}/obs/{q('joint_cluster')}/values")
    assert len(one.body) == 2 * 220 and len(other.body) == 2 * 170
    assert one.headers["etag"] != other.headers["etag"]


def test_a_zip_whose_store_sits_in_a_folder_is_found(format_cases) -> None:
    path = format_cases["zarr-v3-zip-in-a-folder"].path
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[0].startswith("rich-v3.zarr/")
