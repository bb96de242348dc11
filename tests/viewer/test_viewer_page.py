"""The built-in viewer in headless Chromium against the real server: what is drawn
(read back from the WebGL canvas), what the controls do, and how failures look."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image
from playwright.sync_api import Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import (background, cell_pixels, colour_count, hover_a_cell, open_viewer,
                                      plot_pixels, selected_count, set_range, settle, swatch_colour_of,
                                      swatch_colours, wait_state)


def query(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query, keep_blank_values=True)


def test_default_view_draws_the_first_dataset_with_distinct_category_colours(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url)
    assert query(page) == {"dataset": ["small-test"], "embedding": ["X_umap"], "color": ["cell_type"]}
    set_range(page, "#opacity-input", 1)
    settle(page)
    pixels = plot_pixels(page)
    colours = swatch_colours(page)
    assert len(colours) == 14 and len(set(colours)) == 14
    for colour in colours:
        assert colour_count(pixels, colour) > 0, f"category colour {colour} not drawn"


def test_booleans_are_two_categories_and_missing_numbers_are_listed_grey(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&color=doublet")
    names = page.locator(".legend-row .legend-name").all_text_contents()
    assert names == ["False", "True"]
    page.locator("#color-select").select_option("pct_counts_mt")
    wait_state(page)
    assert page.locator(".colorbar").is_visible()
    missing = page.locator(".legend-row.missing")
    assert missing.locator(".legend-name").text_content() == "missing"
    assert int(missing.locator(".legend-count").text_content()) > 0
    assert swatch_colour_of(missing) == (150, 150, 150)


def test_hiding_and_isolating_categories_removes_their_pixels(page: Page,
                                                              viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&color=batch")
    set_range(page, "#opacity-input", 1)
    settle(page)
    colours = swatch_colours(page)
    before = [colour_count(plot_pixels(page), c) for c in colours]
    assert all(n > 0 for n in before)
    rows = page.locator(".legend-row")
    rows.nth(0).click()
    settle(page)
    hidden_first = [colour_count(plot_pixels(page), c) for c in colours]
    assert hidden_first[0] == 0 and hidden_first[1] > 0 and hidden_first[2] > 0
    rows.nth(0).click()
    rows.nth(2).dblclick()
    settle(page)
    isolated = [colour_count(plot_pixels(page), c) for c in colours]
    assert isolated[0] == 0 and isolated[1] == 0 and isolated[2] > 0


def test_gene_box_suggests_genes_and_colours_by_expression(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&color=")
    set_range(page, "#opacity-input", 1)
    settle(page)
    plain = plot_pixels(page)
    plain_colours = {tuple(c) for c in plain.reshape(-1, 3)} - {tuple(background(plain))}
    assert len(plain_colours) == 1
    page.locator("#gene-input").fill("gene0001")
    options = page.locator("#gene-list [role=option]")
    options.first.wait_for()
    names = options.all_text_contents()
    assert names and all(n.upper().startswith("GENE0001") for n in names)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    wait_state(page)
    assert query(page)["gene"] == [names[1]]
    assert names[1] in page.locator("#legend-title").text_content()
    assert page.locator(".colorbar").is_visible()
    coloured = plot_pixels(page)
    cells = np.any(coloured != background(coloured), axis=-1)
    gene_colours = {tuple(c) for c in coloured[cells]}
    assert len(gene_colours) >= 2
    assert not gene_colours & plain_colours


def test_3d_embedding_renders_orbits_and_resets(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&embedding=X_umap_3d")
    assert page.evaluate("window.cellucidViewer.renderer.camera.is3d")
    start = plot_pixels(page)
    assert cell_pixels(start) > 2000
    box = page.locator("#plot").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 40, steps=5)
    page.mouse.up()
    settle(page)
    orbited = plot_pixels(page)
    assert cell_pixels(orbited) > 2000
    assert not np.array_equal(orbited, start)
    page.mouse.wheel(0, -400)
    settle(page)
    assert not np.array_equal(plot_pixels(page), orbited)
    assert re.search(r"^cell\d+ · row [\d,]+\ncell_type: \w", hover_a_cell(page))
    page.mouse.move(5, 5)
    page.keyboard.press("r")
    settle(page)
    assert np.array_equal(plot_pixels(page), start)


def test_lasso_selects_cells_and_can_show_only_them(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    all_cells = cell_pixels(plot_pixels(page))
    page.keyboard.press("l")
    assert page.locator("#lasso-button").get_attribute("aria-pressed") == "true"
    box = page.locator("#plot").bounding_box()
    cx, cy, w, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["width"], box["height"]
    corners = [(cx - w * 0.3, cy - h * 0.3), (cx + w * 0.05, cy - h * 0.3), (cx + w * 0.05, cy + h * 0.3),
               (cx - w * 0.3, cy + h * 0.3)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in corners[1:] + corners[:1]:
        page.mouse.move(*corner, steps=6)
    page.mouse.up()
    count = selected_count(page)
    assert 0 < count < 3000
    page.locator("#only-selection").check()
    settle(page)
    only = cell_pixels(plot_pixels(page))
    assert 0 < only < all_cells
    page.locator("#clear-selection").click()
    settle(page)
    assert page.locator("#selection").is_hidden()
    assert cell_pixels(plot_pixels(page)) == all_cells


def test_view_state_round_trips_through_the_url(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&embedding=X_pca&gene=GENE00003&source=X")
    assert page.locator("#embedding-select").input_value() == "X_pca"
    assert page.locator("#gene-input").input_value() == "GENE00003"
    assert query(page) == {"dataset": ["small-test"], "embedding": ["X_pca"], "gene": ["GENE00003"],
                           "source": ["X"]}
    page.locator("#color-select").select_option("batch")
    wait_state(page)
    assert query(page) == {"dataset": ["small-test"], "embedding": ["X_pca"], "color": ["batch"]}
    page.reload()
    wait_state(page)
    assert page.locator("#color-select").input_value() == "batch"
    assert page.locator("#embedding-select").input_value() == "X_pca"
    assert page.locator(".legend-row").count() == 3


def test_a_stale_link_still_opens_the_plot_and_says_what_is_missing(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&embedding=X_gone&gene=NOT_A_GENE")
    assert query(page)["embedding"] == ["X_umap"] and "gene" not in query(page)
    assert cell_pixels(plot_pixels(page)) > 2000
    assert "NOT_A_GENE" in page.locator("#toast").text_content()


def test_unknown_dataset_shows_the_error_panel(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=does-not-exist", expect="error")
    panel = page.locator("#error")
    assert panel.is_visible()
    assert "does-not-exist" in panel.text_content()
    assert "does-not-exist" in page.evaluate("document.documentElement.dataset.viewerError")


def test_dataset_broken_after_opening_shows_the_error_panel(
        page: Page, viewer_server: ServerThread, viewer_datasets: dict[str, Path]) -> None:
    viewer_datasets["broken"].write_bytes(b"this is no longer an HDF5 file" * 100)
    open_viewer(page, viewer_server.url, "?dataset=broken", expect="error")
    assert page.locator("#error").is_visible()
    message = page.locator("#error .error-message").text_content()
    assert message and message == page.evaluate("document.documentElement.dataset.viewerError")


def test_missing_webgl2_says_to_use_a_browser_with_webgl2(page: Page, viewer_server: ServerThread) -> None:
    page.add_init_script("""{
      const original = HTMLCanvasElement.prototype.getContext;
      HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
        return kind === 'webgl2' ? null : original.call(this, kind, ...rest);
      };
    }""")
    open_viewer(page, viewer_server.url, "?dataset=small-test", expect="error")
    assert page.locator("#error").is_visible()
    assert "WebGL2" in page.locator("#error .error-message").text_content()


def test_losing_the_webgl_context_shows_the_error_panel(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    page.evaluate("window.cellucidViewer.renderer.gl.getExtension('WEBGL_lose_context').loseContext()")
    wait_state(page, "error")
    assert "Reload" in page.locator("#error .error-message").text_content()


def test_anndata_file_without_obs_and_with_3d_only_embedding(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=no-obs-3d")
    assert page.locator("#color-select option").all_text_contents() == ["None (single colour)"]
    assert page.evaluate("window.cellucidViewer.renderer.camera.is3d")
    assert cell_pixels(plot_pixels(page)) > 300


def test_anndata_file_with_tsne_text_column_many_categories_and_sources(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=tsne-text")
    assert page.locator("#embedding-select").input_value() == "X_tsne"
    page.locator("#color-select").select_option("cluster")
    wait_state(page)
    colours = swatch_colours(page)
    assert len(colours) == 300 and len(set(colours)) == 300
    page.locator(".legend-filter").fill("cluster 01")
    assert page.locator(".legend-row:visible").count() == 10
    page.locator("#color-select").select_option("barcode")
    wait_state(page)
    assert page.locator(".legend-row").count() == 1200
    sources = page.locator("#source-select option").evaluate_all("os => os.map(o => o.value)")
    assert {"X", "raw", "layers/counts"} <= set(sources)
    page.locator("#source-select").select_option("raw")
    page.locator("#gene-input").fill("mt-")
    page.locator("#gene-list [role=option]").first.wait_for()
    page.keyboard.press("Enter")
    wait_state(page)
    assert query(page)["source"] == ["raw"] and query(page)["gene"][0].startswith("MT-")


def test_hovering_a_cell_shows_its_index_and_value(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&color=batch")
    assert re.search(r"^cell\d+ · row [\d,]+\nbatch: batch_[123]$", hover_a_cell(page))


def test_help_overlay_lists_shortcuts(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "Lasso" in page.locator("#help").text_content()
    keys = page.locator("#help dt").all_text_contents()
    for key in ["R", "L", "I", "C", "S", "K", "D", "P", "T", "E", "G", "Esc", "?"]:
        assert key in keys, f"shortcut {key} not listed"
    page.keyboard.press("Escape")
    assert page.locator("#help").is_hidden()


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def canvas_size(page: Page) -> tuple[int, int]:
    """The plot's drawing buffer size in device pixels."""
    return tuple(page.eval_on_selector("#plot", "c => [c.width, c.height]"))


def test_png_export_goes_through_the_desktop_bridge(page: Page, viewer_server: ServerThread) -> None:
    # The native save dialog belongs to the desktop window (tested with it); here a
    # stand-in bridge records what the page hands to pywebview.api.save_file.
    page.add_init_script("""window.pywebview = { api: { save_file: (name, data, mime) => {
        window.__saved = { name, data, mime };
        return Promise.resolve({ saved: true, path: '/srv/exports/' + name, error: null }); } } };""")
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    width, height = canvas_size(page)
    page.keyboard.press("e")  # the current figure settings: 2x, title and legend
    page.wait_for_function("window.__saved !== undefined")
    saved = page.evaluate("window.__saved")
    assert saved["mime"] == "image/png" and saved["name"] == "small-test-X_umap-cell_type.png"
    image_width, image_height = png_size(base64.b64decode(saved["data"]))
    assert image_height == 2 * (16 + 30 + height + 16) and image_width > 2 * (width + 32)
    page.locator("#toast").wait_for(state="visible")
    assert "/srv/exports/" in page.locator("#toast").text_content()


def test_png_export_downloads_in_a_plain_browser(page: Page, viewer_server: ServerThread,
                                                 tmp_path: Path) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    page.locator("#figure-section summary").click()
    page.locator("#figure-legend").uncheck()
    page.locator("#figure-scale").select_option("1")
    with page.expect_download() as info:
        page.locator("#figure-png").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.suffix == ".png"
    image = np.asarray(Image.open(target).convert("RGB"))
    width, height = canvas_size(page)
    assert image.shape[:2] == (16 + 30 + height + 16, 16 + width + 16)
    assert cell_pixels(image) > 2000


def test_the_web_app_button_is_shown_only_where_the_desktop_bridge_offers_it(
        page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    assert page.locator("#webapp-section").is_hidden()  # a plain browser: no button
    # Inside the desktop window pywebview injects the bridge (tested with the real app in
    # tests/desktop); here a stand-in records the call and answers like the app.
    page.add_init_script("""window.pywebview = { api: { open_in_webapp: () => {
        window.__asked = true; return Promise.resolve({ ok: false, error: 'Offline.' }); } } };""")
    open_viewer(page, viewer_server.url, "?dataset=small-test")
    page.locator("#webapp-button").click()
    page.wait_for_function("document.documentElement.dataset.webappState === 'failed'")
    assert page.evaluate("window.__asked") and page.locator("#toast").text_content() == "Offline."


def test_a_load_slower_than_half_a_second_shows_progress(page: Page, viewer_server: ServerThread) -> None:
    held = []
    # hold the embedding download until the test releases it
    page.route("**/embeddings/**", lambda route: held.append(route))
    page.goto(f"{viewer_server.url}/?dataset=small-test")
    progress = page.locator("#progress")
    progress.wait_for(state="visible", timeout=30_000)
    assert "X_umap" in progress.text_content()
    assert page.evaluate("document.documentElement.dataset.viewerState") == "loading"
    for route in held:
        route.continue_()
    wait_state(page)
    assert progress.is_hidden()


def test_dataset_picker_lists_the_open_datasets_and_switches(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=small-test&color=batch")
    picker = page.locator("#dataset-select")
    ids = picker.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert {"small-test", "no-obs-3d", "tsne-text"} <= set(ids)
    picker.select_option("tsne-text")
    page.wait_for_url("**dataset=tsne-text**")
    wait_state(page)
    assert query(page)["embedding"] == ["X_tsne"]
