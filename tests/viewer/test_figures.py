"""Figures that stand alone (PNG and SVG with title, legend or colour bar, labels, print
resolution), category labels on the plot, and violin / dot plots by group, checked in
the files the viewer writes: pixels of the PNGs, elements and numbers of the SVGs."""

from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page

from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import colour_count, open_viewer, plot_pixels, set_range, settle, swatch_colours, wait_state

SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}href"
MARGIN, TITLE = 16, 30  # figure.js layout, in CSS pixels

# The native save dialog is the desktop window's (tested with the real app in
# tests/desktop); here a stand-in bridge records what the page hands to save_file.
BRIDGE = """window.pywebview = { api: { save_file: (name, data, mime) => {
    window.__saved = { name, data, mime };
    return Promise.resolve({ saved: true, path: '/srv/figures/' + name, error: null }); } } };"""


@pytest.fixture(scope="module")
def pbmc(viewer_datasets: dict[str, Path]) -> ad.AnnData:
    return ad.read_h5ad(viewer_datasets["pbmc"])


def saved(page: Page) -> dict:
    page.wait_for_function("window.__saved !== undefined", timeout=60_000)
    return page.evaluate("window.__saved")


def canvas_css_size(page: Page) -> tuple[int, int]:
    return tuple(page.eval_on_selector("#plot", "c => [c.clientWidth, c.clientHeight]"))


def download_text(page: Page, button: str, folder: Path) -> tuple[str, str]:
    with page.expect_download() as info:
        page.locator(button).click()
    target = folder / info.value.suggested_filename
    info.value.save_as(target)
    return target.name, target.read_text()


def test_a_png_figure_has_title_legend_and_print_resolution(page: Page, viewer_server: ServerThread) -> None:
    page.add_init_script(BRIDGE)
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    set_range(page, "#opacity-input", 1)
    page.locator("#figure-section summary").click()
    page.locator("#figure-title").fill("PBMC by type")
    page.locator("#figure-scale").select_option("3.125")  # 300 dpi
    page.locator("#figure-png").click()
    figure = saved(page)
    # the toast shows for 5 s: read it before the slow pixel checks below
    page.locator("#toast").wait_for(state="visible")
    assert "300 dpi" in page.locator("#toast").text_content()
    assert figure["mime"] == "image/png" and figure["name"].endswith(".png")
    image = Image.open(io.BytesIO(base64.b64decode(figure["data"])))
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    s = 3.125
    w, h = canvas_css_size(page)
    assert image.height == round((MARGIN + TITLE + h + MARGIN) * s)
    assert image.width > round((MARGIN + w + MARGIN) * s) + 100  # the legend beside the plot
    pixels = np.asarray(image.convert("RGB"))
    plot = pixels[round((MARGIN + TITLE) * s):round((MARGIN + TITLE + h) * s), round(MARGIN * s):round((MARGIN + w) * s)]
    legend = pixels[:, round((MARGIN + w + MARGIN) * s):]
    title = pixels[: round((MARGIN + TITLE) * s)]
    colours = swatch_colours(page)
    for colour in colours:  # every category in the plot and as a legend swatch
        assert colour_count(plot, colour) > 0 and colour_count(legend, colour) > 20, colour
    ink = pixels.reshape(-1, 3).min(axis=0)
    assert (np.abs(title.astype(int) - ink).sum(axis=-1) < 60).sum() > 200  # dark title text


def test_an_svg_figure_keeps_text_and_legend_as_vectors(page: Page, viewer_server: ServerThread,
                                                        tmp_path: Path) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.locator("#figure-section summary").click()
    page.locator("#figure-labels").check()
    name, text = download_text(page, "#figure-svg", tmp_path)
    assert name.endswith(".svg")
    root = ET.fromstring(text)
    texts = [(t.text, float(t.get("x")), float(t.get("y"))) for t in root.iter(f"{SVG}text")]
    names = [t[0] for t in texts]
    categories = page.locator(".legend-row:not(.missing) .legend-name").all_text_contents()
    assert names[0] == "pbmc · cell_type"  # the default title
    w, h = canvas_css_size(page)
    for category in categories:
        # once as a label on the plot, once in the legend beside it
        assert names.count(category) == 2 or (len(category) > 40 and names.count(category) == 1), category
        xs = [x for n, x, _ in texts if n == category]
        assert any(MARGIN <= x <= MARGIN + w for x in xs)
    images = list(root.iter(f"{SVG}image"))
    assert len(images) == 1
    png = Image.open(io.BytesIO(base64.b64decode(images[0].get(XLINK).split(",", 1)[1])))
    assert png.size == (2 * w, 2 * h)  # the default 2x resolution
    assert float(root.get("width")) > MARGIN + w + MARGIN + 80
    assert len(list(root.iter(f"{SVG}circle"))) == len(categories)  # legend swatches


def test_a_gene_figure_has_a_colour_bar_from_the_colour_map(page: Page, viewer_server: ServerThread,
                                                           tmp_path: Path) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&gene=LYZ&cmap=magma")
    page.locator("#figure-section summary").click()
    _, text = download_text(page, "#figure-svg", tmp_path)
    root = ET.fromstring(text)
    stops = [s.get("stop-color") for s in root.iter(f"{SVG}stop")]
    assert stops[0] == "rgb(0, 0, 4)" and stops[-1] == "rgb(252, 253, 191)"  # magma's ends
    names = [t.text for t in root.iter(f"{SVG}text")]
    assert "LYZ (X)" in names and "0 (not detected)" in names
    ticks = [float(n) for n in names if n and re.fullmatch(r"[\d.]+", n)]
    assert min(ticks) == 0 and max(ticks) == pytest.approx(float(page.locator(".cb-max").text_content()))


def test_category_labels_sit_on_their_cells(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    set_range(page, "#opacity-input", 1)
    page.locator("#plot").hover()
    page.keyboard.press("t")
    wait_state(page)
    assert "labels=1" in page.url
    settle(page)
    labels = page.locator("#plot-labels .plot-label")
    assert labels.count() == 8
    pixels = plot_pixels(page)
    colours = dict(zip(page.locator(".legend-row:not(.missing) .legend-name").all_text_contents(), swatch_colours(page)))
    origin = page.locator("#plot").bounding_box()
    for i in range(labels.count()):
        label = labels.nth(i)
        box = label.bounding_box()
        cx, cy = round(box["x"] + box["width"] / 2 - origin["x"]), round(box["y"] + box["height"] / 2 - origin["y"])
        near = pixels[max(0, cy - 12):cy + 12, max(0, cx - 12):cx + 12]
        assert colour_count(near, colours[label.text_content()]) > 0, label.text_content()
    page.locator(".legend-row").nth(0).click()  # a hidden category loses its label
    assert labels.count() == 7
    page.reload()
    wait_state(page)
    assert page.locator("#labels-toggle").is_checked() and labels.count() == 8


def group_of(pbmc: ad.AnnData, name: str) -> np.ndarray:
    return (pbmc.obs["cell_type"] == name).to_numpy()


def test_a_dot_plot_sizes_dots_by_the_share_of_cells_detected(page: Page, viewer_server: ServerThread,
                                                              pbmc: ad.AnnData, tmp_path: Path) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.keyboard.press("p")
    page.locator("#plot-genes").fill("MS4A1 CD14")
    page.locator("#plot-kind").select_option("dot")
    page.locator("#plot-draw").click()
    page.wait_for_function("document.documentElement.dataset.plotState === 'done'")
    _, text = download_text(page, "#plot-svg", tmp_path)
    root = ET.fromstring(text)
    labels = {t.text: (float(t.get("x")), float(t.get("y"))) for t in root.iter(f"{SVG}text")}
    dots = [(float(c.get("cx")), float(c.get("cy")), float(c.get("r"))) for c in root.iter(f"{SVG}circle")]
    x = pbmc[:, "MS4A1"].X.toarray().ravel()
    for group in ["B cells", "CD4 T cells", "CD14+ Monocytes"]:
        row_y = labels[group][1]
        column = sorted((d for d in dots if abs(d[1] - row_y) < 1), key=lambda d: d[0])
        radius = column[0][2] if column and column[0][0] < labels["CD14"][0] else 0.0
        detected = (x[group_of(pbmc, group)] > 0).mean()
        assert (radius / 10) ** 2 == pytest.approx(detected, abs=0.01), group


def test_violins_are_drawn_in_group_colours_and_saved_at_300_dpi(page: Page, viewer_server: ServerThread) -> None:
    page.add_init_script(BRIDGE)
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.locator("#plots-button").click()
    page.locator("#plot-genes").fill("CD3E, LYZ")
    page.locator("#plot-draw").click()
    page.wait_for_function("document.documentElement.dataset.plotState === 'done'")
    data_url = page.evaluate("document.getElementById('group-plot').toDataURL('image/png')")
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))
    for colour in swatch_colours(page):
        assert colour_count(drawn, colour) > 20, colour
    page.locator("#plot-png").click()
    figure = saved(page)
    image = Image.open(io.BytesIO(base64.b64decode(figure["data"])))
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.5)
    assert image.width == pytest.approx(drawn.shape[1] * 3.125, abs=4)
    page.locator("#plot-groupby").select_option("sample")
    assert page.locator("#plot-selected").is_disabled()  # nothing selected
    page.locator("#plot-genes").fill("CD3E, NOT_A_GENE")
    page.locator("#plot-draw").click()
    page.wait_for_function("document.documentElement.dataset.plotState === 'failed'")
    assert "NOT_A_GENE" in page.locator("#plot-error").text_content()
