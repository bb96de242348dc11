"""Gene sets (mean and module score, through the real gene-set route) and tooltips (the
cells route): what is drawn and shown, checked against the file read by anndata."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anndata as ad
import numpy as np
import pytest
from playwright.sync_api import Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import hover_a_cell, open_viewer, plot_pixels, background, wait_state


@pytest.fixture(scope="module")
def pbmc(viewer_datasets: dict[str, Path]) -> ad.AnnData:
    return ad.read_h5ad(viewer_datasets["pbmc"])


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def test_a_gene_set_mean_colours_cells_and_is_kept(page: Page, viewer_server: ServerThread,
                                                   pbmc: ad.AnnData) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=")
    page.locator("#gene-sets summary").click()
    page.locator("#geneset-genes").fill("CD3E\nCD3D, IL7R;  NOT_A_GENE")
    page.locator("#geneset-name").fill("T markers")
    page.locator("#geneset-apply").click()
    wait_state(page)
    assert "NOT_A_GENE" in page.locator("#toast").text_content()
    q = query(page)
    assert q["geneset"] == ["CD3E,CD3D,IL7R,NOT_A_GENE"] and q["setmethod"] == ["mean"] and q["setname"] == ["T markers"]
    assert page.locator("#legend-title").text_content() == "T markers: mean"
    assert page.locator("#color-select").evaluate("s => s.options[s.selectedIndex].textContent") == "T markers (mean)"
    drawn = page.evaluate("Array.from(window.cellucidViewer.coloring.values)")
    expected = np.asarray(pbmc[:, ["CD3E", "CD3D", "IL7R"]].X.mean(axis=1)).ravel()
    assert np.allclose(drawn, expected, atol=1e-5)
    pixels = plot_pixels(page)
    assert len({tuple(c) for c in pixels[np.any(pixels != background(pixels), axis=-1)]}) > 20
    page.locator("#geneset-keep").click()
    page.reload()  # the URL brings the set back, the kept list comes from this browser's storage
    wait_state(page)
    assert np.allclose(page.evaluate("Array.from(window.cellucidViewer.coloring.values)"), expected, atol=1e-5)
    assert page.locator("#geneset-list .kept-name").all_text_contents() == ["T markers"]
    page.locator("#color-select").select_option("sample")
    wait_state(page)
    page.locator("#geneset-list .kept-name").click()
    wait_state(page)
    assert query(page)["setname"] == ["T markers"]


def test_a_module_score_may_be_negative_and_has_no_log_scale(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&geneset=GNLY,NKG7&setmethod=score")
    assert page.locator("#legend-title").text_content() == "GNLY, NKG7: module score"
    values = np.asarray(page.evaluate("Array.from(window.cellucidViewer.coloring.values)"))
    assert values.min() < 0 < values.max()
    assert page.locator(".log-input").is_disabled()
    assert page.locator(".zeros-input").count() == 0  # a score's zero means nothing special
    assert page.locator("#geneset-method").input_value() == "score"


def test_the_tooltip_shows_the_barcode_and_chosen_columns(page: Page, viewer_server: ServerThread,
                                                          pbmc: ad.AnnData) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.locator("#tooltip-section summary").click()
    page.locator("#tooltip-columns input[value=sample]").check()
    page.locator("#tooltip-columns input[value=percent_mito]").check()
    text = hover_a_cell(page)
    head, *lines = text.splitlines()
    barcode, _, row = head.partition(" · row ")
    row = int(row.replace(",", ""))
    assert barcode == pbmc.obs_names[row]
    values = dict(line.split(": ", 1) for line in lines)
    assert values["cell_type"] == pbmc.obs["cell_type"].iloc[row]
    assert values["sample"] == pbmc.obs["sample"].iloc[row]
    assert float(values["percent_mito"]) == pytest.approx(float(pbmc.obs["percent_mito"].iloc[row]), rel=1e-5)
    page.reload()  # the chosen columns are remembered for this dataset
    wait_state(page)
    assert page.locator("#tooltip-columns input[value=sample]").is_checked()
