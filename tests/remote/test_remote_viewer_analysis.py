"""The viewer's analyses on a remote dataset, in real Chromium: cellucid 0.9.5 without UI
behind the tunnel and the local proxy (its data API reads the remote file by HTTP Range).
The page's POSTs come from the proxy's origin, as a user's do."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.remote.remote_page import remote_viewer_page
from tests.remote.servers import ServeProcess
from tests.remote.sshd import SshLab
from tests.viewer.viewer_page import answer_name, hover_a_cell, select_category, selected_count, wait_state


def test_a_remote_dataset_is_compared_kept_and_described_like_a_local_one(
        ssh_lab: SshLab, g2_remote: ServeProcess, browser: Browser) -> None:
    with remote_viewer_page(ssh_lab, g2_remote.port, browser, {"width": 1100, "height": 720}) as page:
        select_category(page, 0)
        picked = selected_count(page)
        assert picked > 0
        page.keyboard.press("d")
        page.locator("#de-method").select_option("t-test")
        page.locator("#de-run").click()
        page.wait_for_function("document.documentElement.dataset.diffexpState === 'done'", timeout=120_000)
        assert page.locator("#de-table tbody tr").count() == 100
        assert f"current selection ({picked:,} cells)" in page.locator("#de-summary").text_content()
        page.keyboard.press("Escape")
        answer_name(page, "#keep-selection", "first type")
        answer_name(page, "#save-column", "remote pick")
        page.wait_for_function("new URLSearchParams(location.search).get('color') === 'remote pick'",
                               timeout=60_000)
        wait_state(page, "ready")
        assert page.locator(".legend-row:not(.missing) .legend-name").all_text_contents() == ["first type"]
        assert hover_a_cell(page).startswith("cell")  # the remote file's barcode
