"""The built-in viewer in the app's real Qt WebEngine window, where it differs from a
browser: the window's size on a small screen, and figures and tables leaving through
the native save dialog (a download does nothing in a webview)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import anndata as ad

from tests.desktop.gui import type_into_dialog, wait_visible, xdotool
from tests.helpers import wait_for

SCREEN = (1280, 800)  # the Xvfb screen of tests/conftest.py


def window_geometry(env: dict[str, str], window_id: str) -> tuple[int, int, int, int]:
    geometry = dict(line.split("=") for line in xdotool(
        env, "getwindowgeometry", "--shell", window_id).splitlines())
    return tuple(int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))


def viewer_ready(app, key: str) -> None:
    app.wait_window(key, "the viewer window")
    wait_for(lambda: app.eval(key, "document.documentElement.dataset.viewerState") == "ready", 90,
             what="the viewer ready")


def test_the_viewer_window_fits_an_800_pixel_screen(launch, app_env, small_h5ad):
    app = launch(str(small_h5ad))
    viewer_ready(app, "viewer:small-test")
    x, y, width, height = window_geometry(app_env, wait_visible(app_env, "^Small test$"))
    assert width <= SCREEN[0] and height <= SCREEN[1], (width, height)
    assert x >= 0 and y >= 0 and x + width <= SCREEN[0] and y + height <= SCREEN[1], (x, y, width, height)
    assert width >= 800 and height >= 600  # still a usable size, not the minimum
    inner = app.eval("viewer:small-test", "[innerWidth, innerHeight]")
    assert inner[1] <= SCREEN[1]


def test_an_svg_figure_is_saved_through_the_native_dialog(launch, app_env, small_h5ad, tmp_path):
    app = launch(str(small_h5ad))
    key = "viewer:small-test"
    viewer_ready(app, key)
    app.eval(key, "document.getElementById('figure-title').value = 'Cells by type'; "
                  "document.getElementById('figure-svg').click(); true")
    dialog = wait_visible(app_env, "^Save file$")
    target = tmp_path / "figure.svg"
    type_into_dialog(app_env, dialog, str(target))
    wait_for(lambda: app.eval(key, "document.documentElement.dataset.figureState") == "done", 60,
             what="the figure saved")
    assert "figure.svg" in app.eval(key, "document.getElementById('toast').textContent")
    root = ET.fromstring(target.read_bytes())
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "Cells by type" in texts and "cell_type" in texts and "T cell CD4" in texts
    images = list(root.iter("{http://www.w3.org/2000/svg}image"))
    assert len(images) == 1
    assert images[0].get("{http://www.w3.org/1999/xlink}href").startswith("data:image/png;base64,")


def test_kept_selections_reach_a_copy_of_the_dataset_through_the_native_dialog(launch, app_env, small_h5ad,
                                                                             tmp_path):
    data = tmp_path / "data" / "small.h5ad"  # its own folder: the saved column is written next to it
    data.parent.mkdir()
    shutil.copy(small_h5ad, data)
    app = launch(str(data))
    key = "viewer:small-test"
    viewer_ready(app, key)
    # what the sidebar's buttons do: select a legend category, keep it, save the kept ones
    app.eval(key, "window.cellucidViewer.selectCategories([0]); window.cellucidViewer.keepSelection('first type'); "
                  "document.getElementById('save-column').click(); "
                  "document.querySelector('.ask-name input').value = 'picked'; "
                  "document.querySelector('.ask-name').requestSubmit(); true")
    wait_for(lambda: app.eval(key, "new URLSearchParams(location.search).get('color')") == "picked", 60,
             what="the saved column shown")
    app.eval(key, "document.getElementById('save-copy').click(); true")
    dialog = wait_visible(app_env, "^Save file$")
    target = tmp_path / "copy.h5ad"
    type_into_dialog(app_env, dialog, str(target))
    wait_for(lambda: "Saved a copy" in app.eval(key, "document.getElementById('toast').textContent"), 120,
             what="the copy saved")
    copy = ad.read_h5ad(target)
    original = ad.read_h5ad(data)
    first = original.obs["cell_type"].cat.categories[0]
    assert (copy.obs["picked"] == "first type").sum() == (original.obs["cell_type"] == first).sum()
    assert "picked" not in original.obs


def test_window_sizes_shrink_to_the_free_screen_area_but_not_below_the_minimum():
    from cellucid_desktop.desktop.windows import fit_window

    assert fit_window((1280, 820), None, (480, 360)) == (1280, 820)  # screen unknown
    assert fit_window((1280, 820), (2560, 1400), (480, 360)) == (1280, 820)
    assert fit_window((1280, 820), (1366, 740), (480, 360)) == (1256, 680)
    assert fit_window((1280, 820), (420, 300), (480, 360)) == (420, 300)  # tinier than the minimum
