"""The data API on files written by real anndata 0.6, 0.7 and 0.9 (tests/fixtures/).

Every embedding, obs column and expression source each file holds is served, and
gene vectors equal what anndata itself reads wherever anndata 0.12 can open the file.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import anndata as ad
import numpy as np
import pytest

from cellucid_desktop.server.registry import DatasetRegistry
from tests.data_api.expected import matrix_column

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures").glob("*.h5ad"))


def _reference(path: Path) -> ad.AnnData | None:
    """anndata 0.12's reading of the file, or None where it no longer reads 0.6 files."""
    try:
        return ad.read_h5ad(path)
    except Exception:  # noqa: BLE001 - 0.6-era layouts are outside anndata 0.12's reader
        return None


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_every_part_of_a_real_anndata_file_is_served(path: Path, start_api) -> None:
    registry = DatasetRegistry()
    dataset = registry.add(path)
    api = start_api(registry)
    described = api.get(f"/datasets/{dataset.id}")
    assert described.status == 200, described.body
    ds = described.json()
    assert ds["n_cells"] == dataset.meta.n_cells
    for emb in ds["embeddings"]:
        answer = api.get(f"/datasets/{dataset.id}/embeddings/{quote(emb['key'], safe='')}")
        assert answer.status == 200, answer.body
        assert len(answer.body) == 4 * ds["n_cells"] * emb["dims"]
    for column in ds["obs"]:
        key = quote(column["key"], safe="")
        meta = api.get(f"/datasets/{dataset.id}/obs/{key}")
        values = api.get(f"/datasets/{dataset.id}/obs/{key}/values")
        assert meta.status == 200 and values.status in (200, 422), (meta.body, values.body)
    reference = _reference(path)
    for source in ds["expression_sources"]:
        genes = api.get(f"/datasets/{dataset.id}/genes?limit=3&source={quote(source['id'])}").json()
        for gene in genes["genes"]:
            answer = api.get(f"/datasets/{dataset.id}/genes/{quote(gene['name'], safe='')}"
                             f"?source={quote(source['id'])}")
            assert answer.status == 200, answer.body
            served = np.frombuffer(answer.body, dtype="<f4")
            assert served.shape == (ds["n_cells"],)
            if reference is None:
                continue
            if source["id"] == "X":
                expected = matrix_column(reference.X, gene["index"])
            elif source["id"] == "raw":
                expected = matrix_column(reference.raw.X, gene["index"])
            else:
                layer = reference.layers[source["id"].split("/", 1)[1]]
                expected = matrix_column(layer, gene["index"])
            np.testing.assert_allclose(served, expected, rtol=1e-6)
