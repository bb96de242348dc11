"""Selections in headless Chromium: lasso with Shift/Alt, a legend category, a value range
(typed or brushed on the histogram), invert, kept named selections, show-only re-framing;
counts checked against the file read by anndata, pictures read back from the canvas."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import (background, colour_count, draw_lasso, element_pixels, open_viewer,
                                      plot_pixels, rectangle, select_category, select_where, selected_count,
                                      set_range, settle, swatch_colours)


@pytest.fixture(scope="module")
def pbmc_obs(viewer_datasets: dict[str, Path]) -> pd.DataFrame:
    return ad.read_h5ad(viewer_datasets["pbmc"], backed="r").obs.copy()


def test_lasso_shift_adds_and_alt_removes(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc")
    page.keyboard.press("l")
    left, right = rectangle(0.02, 0.02, 0.5, 0.98), rectangle(0.5, 0.02, 0.98, 0.98)
    draw_lasso(page, left)
    a = selected_count(page)
    draw_lasso(page, right)  # a new lasso replaces
    b = selected_count(page)
    assert a > 0 and b > 0
    draw_lasso(page, left, hold="Shift")
    assert selected_count(page) == a + b
    draw_lasso(page, right, hold="Alt")
    assert selected_count(page) == a
    # the mode switch does what the keys do
    page.locator("#selection-section .mode[data-mode=add]").click()
    draw_lasso(page, right)
    assert selected_count(page) == a + b
    page.locator("#selection-section .mode[data-mode=subtract]").click()
    draw_lasso(page, left)
    assert selected_count(page) == b
    # only the right half's cells remain on screen
    page.locator("#only-selection").check()
    page.locator("#reset-button").click()  # back to the full view to compare halves
    settle(page)
    pixels = plot_pixels(page)
    drawn = np.any(pixels != background(pixels), axis=-1)
    width = drawn.shape[1]
    assert drawn[:, int(width * 0.52):].sum() > 200 and drawn[:, : int(width * 0.48)].sum() == 0


def test_a_legend_category_is_selected_and_counted_per_category(page: Page, viewer_server: ServerThread,
                                                                pbmc_obs: pd.DataFrame) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    counts = pbmc_obs["cell_type"].value_counts()
    rows = page.locator(".legend-row")
    select_category(page, 2)
    assert selected_count(page) == counts["B cells"]
    assert rows.nth(2).locator(".legend-count").text_content() == f"{counts['B cells']:,} / {counts['B cells']:,}"
    assert rows.nth(0).locator(".legend-count").text_content() == f"0 / {counts['CD4 T cells']:,}"
    select_category(page, 3, hold="Shift")
    assert selected_count(page) == counts["B cells"] + counts["NK cells"]
    # selecting is not hiding: every category is still drawn (dimmed)
    set_range(page, "#opacity-input", 1)
    settle(page)
    pixels = plot_pixels(page)
    colours = swatch_colours(page)
    assert colour_count(pixels, colours[2]) > 0 and colour_count(pixels, colours[3]) > 0
    assert colour_count(pixels, colours[0]) == 0  # unselected cells are dimmed, not in their colour


def test_a_typed_condition_selects_by_value_and_invert_flips_it(page: Page, viewer_server: ServerThread,
                                                                pbmc_obs: pd.DataFrame) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc")
    page.locator("#range-select summary").click()
    assert select_where(page, "percent_mito < 5") == "done"
    expected = int((pbmc_obs["percent_mito"].to_numpy() < np.float32(5)).sum())
    assert 0 < expected < len(pbmc_obs)
    assert selected_count(page) == expected
    page.keyboard.press("Escape")  # leave the text box: shortcuts work again
    page.keyboard.press("i")
    assert selected_count(page) == len(pbmc_obs) - expected
    assert select_where(page, "2 <= n_genes < 40") == "done"
    n_genes = pbmc_obs["n_genes"].to_numpy()
    assert selected_count(page) == int(((n_genes >= 2) & (n_genes < 40)).sum())
    assert select_where(page, "CD3E > 1") == "done"  # a gene works too
    assert selected_count(page) > 0
    assert select_where(page, "cell_type < 3") == "failed"
    assert "not numeric" in page.locator("#range-error").text_content()
    assert select_where(page, "percent_mito is low") == "failed"
    assert "percent_mito < 5" in page.locator("#range-error").text_content()


def test_brushing_the_histogram_selects_that_value_range(page: Page, viewer_server: ServerThread,
                                                         pbmc_obs: pd.DataFrame) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc")
    page.locator("#range-select summary").click()
    page.locator("#range-column").select_option("obs:percent_mito")
    page.wait_for_function("document.getElementById('range-max').textContent !== ''")
    hist = page.locator("#range-histogram")
    pixels = element_pixels(page, "#range-histogram")
    assert len({tuple(p) for p in pixels.reshape(-1, 3)}) > 1  # bars drawn
    box = hist.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    text = page.locator("#range-query").input_value()
    low, _, high = text.partition(" <= percent_mito <= ")
    values = pbmc_obs["percent_mito"].to_numpy()
    expected = int(((values >= float(low)) & (values <= float(high))).sum())
    assert expected > 0
    assert abs(selected_count(page) - expected) <= 3  # the box shows 4 significant digits


def test_show_only_the_selection_reframes_the_view(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    select_category(page, 6)  # Megakaryocytes: a small cluster
    page.locator("#plot").hover()
    settle(page)

    def extent() -> float:
        pixels = plot_pixels(page)
        colour = swatch_colours(page)[6]
        ys, xs = np.nonzero(np.all(pixels == np.array(colour, dtype=np.uint8), axis=-1))
        return max(np.ptp(xs) / pixels.shape[1], np.ptp(ys) / pixels.shape[0])

    set_range(page, "#opacity-input", 1)
    settle(page)
    before = extent()
    page.keyboard.press("s")
    settle(page)
    assert page.locator("#only-selection").is_checked()
    after = extent()
    assert before < 0.25 and after > 0.6, (before, after)
    pixels = plot_pixels(page)
    others = swatch_colours(page)[:6]
    assert all(colour_count(pixels, c) == 0 for c in others)
    page.keyboard.press("s")
    settle(page)
    assert extent() == pytest.approx(before, abs=0.01)


def test_selections_are_kept_by_name_and_combined_again(page: Page, viewer_server: ServerThread,
                                                        pbmc_obs: pd.DataFrame) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    counts = pbmc_obs["cell_type"].value_counts()
    select_category(page, 2)
    page.locator("#plot").hover()
    page.keyboard.press("k")
    page.locator(".ask-name input").fill("my B cells")
    page.keyboard.press("Enter")
    select_category(page, 3)
    assert selected_count(page) == counts["NK cells"]
    kept = page.locator("#kept-list .kept-row")
    assert kept.count() == 1 and kept.locator(".kept-name").text_content() == "my B cells"
    assert kept.locator(".legend-count").text_content() == f"{counts['B cells']:,}"
    page.keyboard.down("Shift")
    kept.locator(".kept-name").click()
    page.keyboard.up("Shift")
    assert selected_count(page) == counts["B cells"] + counts["NK cells"]
    page.locator("#clear-selection").click()
    assert selected_count(page) == 0
    kept.locator(".kept-name").click()
    assert selected_count(page) == counts["B cells"]
    kept.locator(".kept-forget").click()
    assert page.locator("#kept-list .kept-row").count() == 0


def test_a_lasso_in_3d_selects_what_is_drawn_inside_it(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&embedding=X_umap_3d")
    set_range(page, "#opacity-input", 1)
    page.keyboard.press("l")
    draw_lasso(page, rectangle(0.3, 0.3, 0.7, 0.7))
    assert 0 < selected_count(page) < 3000
    settle(page)
    pixels = plot_pixels(page)
    full = np.zeros(pixels.shape[:2], dtype=bool)
    for colour in swatch_colours(page):  # cells in their own colour are the selected ones
        full |= np.all(pixels == np.array(colour, dtype=np.uint8), axis=-1)
    ys, xs = np.nonzero(full)
    height, width = full.shape
    margin = 8  # a point's radius
    assert len(xs) > 100
    assert xs.min() >= 0.3 * width - margin and xs.max() <= 0.7 * width + margin
    assert ys.min() >= 0.3 * height - margin and ys.max() <= 0.7 * height + margin
