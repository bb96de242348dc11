"""What leaves the viewer from a selection, through the real server: kept selections saved
as a categorical column (listed and coloured on the next open, deletable), the barcodes
CSV (download, or the app's save bridge), and a copy of the dataset read back by anndata.
Each test serves its own copy of the file: saving writes a sidecar next to it."""

from __future__ import annotations

import base64
import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import pytest
from playwright.sync_api import Page

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import (answer_name, open_viewer, select_category, select_where, selected_count,
                                      wait_state)


@pytest.fixture
def own_copy(viewer_datasets: dict[str, Path], tmp_path: Path) -> Path:
    target = tmp_path / "data" / "pbmc.h5ad"
    target.parent.mkdir()
    shutil.copy(viewer_datasets["pbmc"], target)
    return target


@pytest.fixture
def server(own_copy: Path) -> Iterator[ServerThread]:
    registry = DatasetRegistry()
    registry.add(own_copy, dataset_id="pbmc")
    with ServerThread(registry) as running:
        yield running


def save_column(page: Page, key: str) -> None:
    """Save the kept selections as column `key` and wait until the cells are coloured by it."""
    answer_name(page, "#save-column", key)
    page.wait_for_function("k => new URLSearchParams(location.search).get('color') === k", arg=key)
    wait_state(page)


def test_kept_selections_saved_as_a_column_come_back_on_the_next_open(
        page: Page, server: ServerThread, own_copy: Path) -> None:
    before = own_copy.read_bytes()
    open_viewer(page, server.url, "?dataset=pbmc&color=cell_type", token=server.token)
    select_category(page, 2)
    b_cells = selected_count(page)
    answer_name(page, "#keep-selection", "B-like")
    select_category(page, 3)
    nk_cells = selected_count(page)
    answer_name(page, "#keep-selection", "NK-like")
    save_column(page, "my_groups")
    names = page.locator(".legend-row:not(.missing) .legend-name").all_text_contents()
    counts = page.locator(".legend-row:not(.missing) .legend-count").all_text_contents()
    assert names == ["B-like", "NK-like"]
    assert counts == [f"0 / {b_cells:,}", f"{nk_cells:,} / {nk_cells:,}"]  # NK cells are still selected
    assert page.locator("#color-select optgroup[label='Saved selections'] option").all_text_contents() == ["my_groups (2)"]
    assert own_copy.read_bytes() == before, "the user's file must never be rewritten"
    # a new page (the next open): listed, coloured, deletable
    page.goto(f"{server.url}/?dataset=pbmc&color=my_groups")
    wait_state(page)
    assert page.locator(".legend-row:not(.missing) .legend-name").all_text_contents() == ["B-like", "NK-like"]
    assert page.locator("#saved-list .kept-name").all_text_contents() == ["my_groups"]
    page.locator("#saved-list .kept-forget").click()
    page.wait_for_function("document.querySelectorAll('#saved-list .kept-row').length === 0")
    assert page.locator("#color-select option[value=my_groups]").count() == 0


def test_the_barcodes_of_a_selection_download_as_csv(page: Page, server: ServerThread, own_copy: Path,
                                                     tmp_path: Path) -> None:
    obs = ad.read_h5ad(own_copy, backed="r").obs
    open_viewer(page, server.url, "?dataset=pbmc&color=cell_type", token=server.token)
    select_category(page, 6)  # Megakaryocytes
    with page.expect_download() as info:
        page.locator("#export-csv").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text())))
    wanted = obs.index[obs["cell_type"] == "Megakaryocytes"].tolist()
    assert [r[0] for r in rows[1:]] == wanted  # barcodes, in row order
    assert rows[0][1:] == ["cell_type"] and {r[1] for r in rows[1:]} == {"Megakaryocytes"}


def test_the_barcodes_go_through_the_app_save_bridge(page: Page, server: ServerThread, own_copy: Path) -> None:
    # The native save dialog is the app's (tests/desktop); a stand-in bridge records the call.
    page.add_init_script("""window.pywebview = { api: { save_file: (name, data, mime) => {
        window.__saved = { name, data, mime };
        return Promise.resolve({ saved: true, path: '/srv/' + name, error: null }); } } };""")
    obs = ad.read_h5ad(own_copy, backed="r").obs
    open_viewer(page, server.url, "?dataset=pbmc&color=sample", token=server.token)
    page.locator("#range-select summary").click()
    assert select_where(page, "percent_mito >= 12") == "done"
    page.locator("#export-csv").click()
    page.wait_for_function("window.__saved !== undefined")
    saved = page.evaluate("window.__saved")
    assert saved["mime"].startswith("text/csv") and saved["name"].endswith("cells.csv")
    rows = list(csv.reader(io.StringIO(base64.b64decode(saved["data"]).decode())))
    assert [r[0] for r in rows[1:]] == obs.index[obs["percent_mito"] >= 12].tolist()
    assert "/srv/" in page.locator("#toast").text_content()


def test_a_copy_of_the_dataset_has_the_saved_columns(page: Page, server: ServerThread, own_copy: Path,
                                                     tmp_path: Path) -> None:
    open_viewer(page, server.url, "?dataset=pbmc&color=cell_type", token=server.token)
    select_category(page, 2)
    answer_name(page, "#keep-selection", "picked")
    save_column(page, "picked_cells")
    with page.expect_download(timeout=120_000) as info:
        page.locator("#save-copy").click()
    target = tmp_path / "copy.h5ad"
    info.value.save_as(target)
    copy = ad.read_h5ad(target)
    original = ad.read_h5ad(own_copy)
    assert list(copy.obs_names) == list(original.obs_names)
    assert (copy.obs["picked_cells"] == "picked").sum() == (original.obs["cell_type"] == "B cells").sum()
    assert copy.obs["picked_cells"].isna().sum() == (original.obs["cell_type"] != "B cells").sum()
