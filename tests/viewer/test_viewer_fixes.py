"""Bugs seen while trying the viewer as a biologist would (issue 12), each checked the way
the user met it: keys typed, pictures read back, the URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
from playwright.sync_api import Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.analysis_files import LONG_NAME
from tests.viewer.viewer_page import (background, colormap_lut, element_pixels, open_viewer, plot_pixels,
                                      set_range, settle, wait_state)


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def test_enter_right_after_typing_takes_the_gene_typed_not_a_stale_suggestion(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc")
    box = page.locator("#gene-input")
    box.click()
    page.keyboard.type("CD")
    page.locator("#gene-list [role=option]").first.wait_for()
    assert page.locator("#gene-list [role=option]").first.text_content() == "CD2"
    page.keyboard.type("4")
    page.keyboard.press("Enter")  # within the search debounce: the list still shows "CD" answers
    page.wait_for_function("new URLSearchParams(location.search).get('gene') !== null")
    wait_state(page)
    assert query(page)["gene"] == ["CD4"]
    assert page.locator("#legend-title").text_content().startswith("CD4")


def test_colour_bar_follows_the_chosen_colour_map(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=percent_mito")
    set_range(page, "#opacity-input", 1)
    page.locator(".colormap-select").select_option("magma")
    settle(page)
    magma = {tuple(c) for c in colormap_lut(page, "magma")}
    viridis = {tuple(c) for c in colormap_lut(page, "viridis")}
    bar = element_pixels(page, ".colorbar")
    inner = bar[bar.shape[0] // 2, 3:-3]  # the middle row, away from the rounded corners
    assert all(tuple(px) in magma for px in inner), "colour bar pixels not from magma"
    assert sum(tuple(px) in viridis for px in inner) < 3
    pixels = plot_pixels(page)
    cells = pixels[np.any(pixels != background(pixels), axis=-1)]
    drawn = {tuple(c) for c in cells}
    assert len(drawn & magma) > 20 and not drawn & (viridis - magma)
    assert query(page)["cmap"] == ["magma"]


def test_an_unknown_colour_column_in_the_url_is_named_as_written(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=nosuchcol")
    message = page.locator("#toast").text_content()
    assert "'nosuchcol'" in message and "/values" not in message
    assert query(page)["color"] == [""]


def test_colour_by_names_the_gene_shown(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&gene=MS4A1")
    select = page.locator("#color-select")
    shown = select.evaluate("s => s.options[s.selectedIndex].textContent")
    assert shown == "MS4A1"
    page.locator("#color-select").select_option("sample")
    wait_state(page)
    assert select.evaluate("s => s.options[s.selectedIndex].textContent") == "sample (2)"
    assert select.locator("option", has_text="MS4A1").count() == 0


def test_long_category_names_are_readable_in_the_legend(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    name = page.locator(".legend-row .legend-name", has_text="Dendritic")
    assert name.text_content() == LONG_NAME
    fits = name.evaluate("e => e.scrollWidth <= e.clientWidth && e.getBoundingClientRect().right <= "
                         "document.getElementById('sidebar').getBoundingClientRect().right")
    assert fits, "the name is cut off"
    lines = name.evaluate("e => Math.round(e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight))")
    assert lines >= 2  # wrapped onto several lines rather than clipped
    assert LONG_NAME in name.locator("xpath=..").get_attribute("title")
