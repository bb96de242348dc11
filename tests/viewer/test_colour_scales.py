"""Colour you can trust, read back from the canvas: limits and percentile clips, log
scale, the colour bar's labels, zeros visible on the dark theme, and all of it surviving
a reload through the URL."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.sync_api import Browser, Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.conftest import VIEWPORT
from tests.viewer.viewer_page import background, colormap_lut, open_viewer, plot_pixels, set_range, settle, wait_state


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def cell_colours(page: Page) -> np.ndarray:
    pixels = plot_pixels(page)
    return pixels[np.any(pixels != background(pixels), axis=-1)]


def lut_positions(page: Page, colours: np.ndarray, name: str = "viridis") -> np.ndarray:
    """The colour-map index (0..255) of each colour that is one of the map's; others dropped."""
    lut = colormap_lut(page, name)
    index = {tuple(c): i for i, c in enumerate(lut)}
    return np.array([index[tuple(c)] for c in colours if tuple(c) in index])


def change(page: Page, selector: str, value: str) -> None:
    page.locator(selector).fill(value)
    page.locator(selector).press("Enter")
    settle(page)


def test_limits_put_every_cell_above_them_at_the_top_colour(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&gene=CD3E")
    set_range(page, "#opacity-input", 1)
    settle(page)
    lut = colormap_lut(page, "viridis")
    before = lut_positions(page, cell_colours(page))
    assert len(np.unique(before)) > 5  # a spread of expression colours
    change(page, ".vmax-input", "0.5")
    after = lut_positions(page, cell_colours(page))
    assert len(after) > 100 and set(after) == {255}  # every expressing cell is above 0.5
    assert page.locator(".cb-max").text_content() == "≥ 0.5"
    assert query(page)["vmax"] == ["0.5"]
    zero = tuple(int(v) for v in page.evaluate("window.cellucidViewer.renderer.style.zero.map(v => Math.round(v * 255))"))
    assert any(tuple(c) == zero for c in cell_colours(page))  # cells without CD3E are in the zero colour
    assert tuple(lut[255]) != zero


def test_a_percentile_clip_and_log_scale_round_trip_through_the_url(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=percent_mito")
    set_range(page, "#opacity-input", 1)
    settle(page)
    linear = lut_positions(page, cell_colours(page))
    page.locator(".log-input").check()
    settle(page)
    logged = lut_positions(page, cell_colours(page))
    assert logged.mean() > linear.mean() + 10  # log lifts the many low values up the map
    assert page.locator(".cb-scale").text_content() == "log scale"
    page.locator(".clip-select").select_option("5-95")
    settle(page)
    clipped = lut_positions(page, cell_colours(page))
    assert (clipped == 0).sum() > (logged == 0).sum() and (clipped == 255).sum() > (logged == 255).sum()
    assert page.locator(".cb-min").text_content().startswith("≤ ")
    assert page.locator(".cb-max").text_content().startswith("≥ ")
    assert query(page)["log"] == ["1"] and query(page)["clip"] == ["5-95"]
    picture = plot_pixels(page)
    page.reload()
    wait_state(page)
    set_range(page, "#opacity-input", 1)
    settle(page)
    assert page.locator(".log-input").is_checked()
    assert page.locator(".clip-select").input_value() == "5-95"
    assert np.array_equal(plot_pixels(page), picture)
    page.locator("#color-select").select_option("n_genes")  # a new colouring starts unclipped
    wait_state(page)
    assert "clip" not in query(page) and "log" not in query(page)


def test_log_scale_is_offered_only_for_values_without_negatives(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=tsne-text&color=score")  # a normal score: negatives
    assert page.locator(".log-input").is_disabled()
    open_viewer(page, viewer_server.url, "?dataset=tsne-text&color=score&log=1")
    assert not page.locator(".log-input").is_checked()
    assert "log" not in query(page)


@pytest.fixture
def dark_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark", device_scale_factor=1)
    yield context.new_page()
    context.close()


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(float) / 255
    c = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return c @ np.array([0.2126, 0.7152, 0.0722])


def test_cells_where_a_gene_is_not_detected_stand_out_on_the_dark_theme(
        dark_page: Page, viewer_server: ServerThread) -> None:
    open_viewer(dark_page, viewer_server.url, "?dataset=pbmc&gene=MS4A1")
    pixels = plot_pixels(dark_page)
    bg = background(pixels)
    assert relative_luminance(bg[None])[0] < 0.05  # the dark theme's plot
    cells = pixels[np.any(pixels != bg, axis=-1)]
    lum_bg = relative_luminance(bg[None])[0]
    contrast = (relative_luminance(cells) + 0.05) / (lum_bg + 0.05)
    assert len(cells) > 5000
    assert (contrast >= 2.0).mean() > 0.95, f"only {(contrast >= 2.0).mean():.0%} of cell pixels stand out"
