"""The built-in viewer on a remote cellucid 0.9.5 without UI, in real Chromium: through
the tunnel and the local proxy, with data read from the remote file by HTTP Range."""

from __future__ import annotations

from playwright.sync_api import Browser

from tests.remote.remote_page import remote_viewer_page
from tests.remote.servers import ServeProcess
from tests.remote.sshd import SshLab
from tests.viewer.viewer_page import cell_pixels, plot_pixels, wait_state


def test_remote_cells_are_drawn_and_recoloured_by_a_remote_gene(
        ssh_lab: SshLab, g2_remote: ServeProcess, browser: Browser) -> None:
    with remote_viewer_page(ssh_lab, g2_remote.port, browser, {"width": 1000, "height": 700}) as page:
        before = plot_pixels(page)
        assert cell_pixels(before) > 1000, "the remote's cells are drawn"
        page.evaluate("name => window.cellucidViewer.colorByGene(name)", "GENE00007")
        wait_state(page, "ready")
        after = plot_pixels(page)
        assert (after != before).any(), "colouring by a remote gene changes the plot"
