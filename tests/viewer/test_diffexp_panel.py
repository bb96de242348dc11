"""The differential-expression panel against the real server's diffexp and job routes:
groups from categories, the selection and kept selections; the ranked table (its markers
checked against how the test file was made), click-to-colour, CSV, errors in place."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anndata as ad
import pandas as pd
import pytest
from playwright.sync_api import Page

from cellucid_desktop.data.synthetic import make_synthetic
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.viewer.analysis_files import MARKERS
from tests.viewer.viewer_page import answer_name, open_viewer, select_category, selected_count, wait_state

GROUP = '#diffexp [data-role="group"]'
REFERENCE = '#diffexp [data-role="reference"]'


@pytest.fixture(scope="module")
def pbmc_obs(viewer_datasets: dict[str, Path]) -> pd.DataFrame:
    return ad.read_h5ad(viewer_datasets["pbmc"], backed="r").obs.copy()


def compare(page: Page) -> list[str]:
    """Run the comparison set up in the panel; the table's genes, best first."""
    page.locator("#de-run").click()
    page.wait_for_function("['done', 'idle'].includes(document.documentElement.dataset.diffexpState)",
                           timeout=120_000)
    assert page.locator("#de-error").is_hidden(), page.locator("#de-error").text_content()
    return page.locator("#de-table tbody td.gene").all_text_contents()


def test_a_category_against_the_rest_ranks_its_markers_first(page: Page, viewer_server: ServerThread,
                                                             pbmc_obs: pd.DataFrame) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.keyboard.press("d")
    page.locator(f"{GROUP} .group-kind").select_option("category")
    assert page.locator(f"{GROUP} .group-column").input_value() == "cell_type"  # the column shown
    page.locator(f"{GROUP} .group-value").select_option("B cells")
    page.locator("#de-method").select_option("wilcoxon")
    genes = compare(page)
    assert len(genes) == 100
    assert set(genes[:3]) == set(MARKERS["B cells"])
    n_b = int((pbmc_obs["cell_type"] == "B cells").sum())
    summary = page.locator("#de-summary").text_content()
    assert f"cell_type = B cells ({n_b:,} cells) vs rest of the cells ({len(pbmc_obs) - n_b:,})" in summary
    assert "Wilcoxon rank-sum on X" in summary
    page.locator("#de-table tbody tr").first.click()
    wait_state(page)
    assert parse_qs(urlsplit(page.url).query)["gene"] == [genes[0]]
    assert page.locator("#legend-title").text_content().startswith(genes[0])


def test_the_selection_against_a_kept_selection_and_the_csv_matches_the_table(
        page: Page, viewer_server: ServerThread, tmp_path: Path) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    select_category(page, 4)  # CD14+ monocytes
    answer_name(page, "#keep-selection", "monocytes")
    select_category(page, 3)  # NK cells
    page.locator("#diffexp-button").click()
    assert page.locator(f"{GROUP} .group-kind").input_value() == "selection"
    kept = page.evaluate("window.cellucidViewer.kept[0].count")
    page.locator(f"{REFERENCE} .group-kind").select_option(label=f"monocytes ({kept:,})")
    page.locator("#de-method").select_option("t-test")
    page.locator("#de-n").fill("25")
    genes = compare(page)
    assert len(genes) == 25
    assert set(genes[:3]) == set(MARKERS["NK cells"])
    assert "vs monocytes" in page.locator("#de-summary").text_content()
    with page.expect_download() as info:
        page.locator("#de-csv").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.name.endswith(".csv") and "current_selection-vs-monocytes" in target.name
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [r["gene"] for r in rows] == genes
    table = page.locator("#de-table tbody tr").first.locator("td").all_text_contents()
    assert float(rows[0]["score"]) == pytest.approx(float(table[2]), rel=1e-3)
    assert all(0 <= float(r["pvalue_adj"]) <= 1 for r in rows)


def test_the_top_genes_go_to_violins_by_the_compared_column(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=sample")
    page.keyboard.press("d")
    page.locator(f"{GROUP} .group-kind").select_option("category")
    page.locator(f"{GROUP} .group-column").select_option("cell_type")
    page.locator(f"{GROUP} .group-value").select_option("Megakaryocytes")
    genes = compare(page)
    page.locator("#de-plot").click()
    page.wait_for_function("document.documentElement.dataset.plotState === 'done'")
    assert page.locator("#plots").is_visible()
    assert page.locator("#plot-groupby").input_value() == "cell_type"
    assert page.locator("#plot-genes").input_value() == ", ".join(genes[:6])


def test_comparison_problems_are_said_in_the_panel(page: Page, viewer_server: ServerThread) -> None:
    open_viewer(page, viewer_server.url, "?dataset=pbmc&color=cell_type")
    page.keyboard.press("d")
    assert page.locator(f"{GROUP} .group-kind option[value=selection]").is_disabled()  # nothing selected yet
    page.locator(f"{GROUP} .group-kind").select_option("category")
    page.locator(f"{GROUP} .group-value").select_option("B cells")
    # a source the server does not have (a stale page, another file): the server's sentence is shown
    page.eval_on_selector("#de-source", "s => { s.append(new Option('layers/gone', 'layers/gone')); s.value = 'layers/gone'; }")
    page.locator("#de-run").click()
    page.locator("#de-error").wait_for(state="visible", timeout=60_000)
    assert "layers/gone" in page.locator("#de-error").text_content()
    assert page.locator("#de-table").is_hidden()
    assert page.evaluate("document.documentElement.dataset.viewerState") == "ready"  # the plot is untouched
    assert selected_count(page) == 0


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """200,000 cells x 2,000 genes: a Wilcoxon test takes seconds here (index build included)."""
    path = make_synthetic(tmp_path_factory.mktemp("big") / "big.h5ad", 200_000, 2000, genes_per_cell=60, seed=5)
    registry = DatasetRegistry()
    registry.add(path, dataset_id="big")
    with ServerThread(registry) as server:
        yield server


def test_a_long_comparison_shows_progress_and_can_be_cancelled(page: Page, big_server: ServerThread) -> None:
    open_viewer(page, big_server.url, "?dataset=big&color=cell_type", token=big_server.token)
    page.keyboard.press("d")
    page.locator(f"{GROUP} .group-kind").select_option("category")
    page.locator(f"{GROUP} .group-value").select_option("NK cell")
    page.locator("#de-method").select_option("wilcoxon")
    page.locator("#de-run").click()
    page.locator("#de-cancel").wait_for(state="visible")
    page.wait_for_function("document.querySelector('.de-progress-text').textContent !== 'Starting…'")
    assert page.locator("#de-progress").is_visible()
    assert page.locator(".de-progress-text").text_content()  # what the server is doing
    assert page.locator("#de-run").is_disabled()
    page.locator("#de-cancel").click()
    page.wait_for_function("document.documentElement.dataset.diffexpState !== 'running'", timeout=60_000)
    assert page.locator("#de-error").text_content() == "Cancelled."  # the server's job says so
    assert page.locator("#de-table").is_hidden() and page.locator("#de-progress").is_hidden()
    page.locator("#de-method").select_option("t-test")  # the server is free again
    genes = compare(page)
    assert len(genes) == 100
