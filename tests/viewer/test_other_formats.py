"""The built-in viewer draws datasets of every format the app opens (headless Chromium):
a Zarr folder and a zipped store, a MuData modality with the container's joint UMAP and
clusters, a loom file with velocyto's _X/_Y; each coloured by a category, then a gene."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from playwright.sync_api import Page

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.formats.stores import Case
from tests.viewer.viewer_page import (background, cell_pixels, open_viewer, plot_pixels,
                                      set_range, settle, swatch_colours, wait_state)

DRAWN = {  # dataset id -> (format case, modality, embedding, category column, gene)
    "zarr-folder": ("zarr-v3-folder", None, "X_umap", "cell_type", "CD4"),
    "zarr-zip": ("zarr-v2-zip", None, "X_umap_3d", "cluster_num", "GAPDH"),
    "mudata-rna": ("h5mu-citeseq-rna", "rna", "X_wnn_umap", "joint_cluster", "GENE3"),
    "loom": ("loom-loompy", None, "XY", "ClusterName", "Gene7"),
}


@pytest.fixture(scope="module")
def formats_server(format_cases: dict[str, Case]) -> Iterator[ServerThread]:
    registry = DatasetRegistry()
    for dataset_id, (case_name, modality, *_rest) in DRAWN.items():
        registry.add(format_cases[case_name].path, dataset_id=dataset_id, modality=modality)
    server = ServerThread(registry, token=None).start()  # the token flow: test_token_in_browser
    yield server
    server.stop()


@pytest.mark.parametrize("dataset_id", list(DRAWN))
def test_each_format_is_drawn_by_category_and_by_gene(page: Page, formats_server: ServerThread,
                                                     format_cases: dict[str, Case],
                                                     dataset_id: str) -> None:
    case_name, _, embedding, column, gene = DRAWN[dataset_id]
    reference = format_cases[case_name].reference
    open_viewer(page, formats_server.url,
                f"?dataset={dataset_id}&embedding={embedding}&color={column}")
    set_range(page, "#opacity-input", 1)
    settle(page)
    by_category = plot_pixels(page)
    assert cell_pixels(by_category) > 500, "the cells are drawn"
    categories = reference.obs[column].astype(str).nunique()
    assert len(swatch_colours(page)) >= categories
    page.evaluate("name => window.cellucidViewer.colorByGene(name)", gene)
    wait_state(page)
    by_gene = plot_pixels(page)
    cells = np.any(by_gene != background(by_gene), axis=-1)
    assert cells.sum() > 500 and (by_gene != by_category).any(), "the gene recolours the plot"
    assert gene in page.locator("#legend-title").text_content()
