"""The built-in viewer on a remote cellucid 0.9.5 without UI, in real Chromium: through
the tunnel and the local proxy, with data read from the remote file by HTTP Range."""

from __future__ import annotations

from playwright.sync_api import Browser

from cellucid_desktop.remote.session import RemoteSession
from tests.remote.conftest import spec_for
from tests.remote.servers import ServeProcess
from tests.remote.sshd import SshLab
from tests.viewer.viewer_page import cell_pixels, plot_pixels, wait_state


def test_remote_cells_are_drawn_and_recoloured_by_a_remote_gene(
        ssh_lab: SshLab, g2_remote: ServeProcess, browser: Browser) -> None:
    session = RemoteSession(spec_for(ssh_lab, g2_remote.port))
    try:
        view = session.open()
        assert not view.direct
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        try:
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(view.url)
            wait_state(page, "ready")
            before = plot_pixels(page)
            assert cell_pixels(before) > 1000, "the remote's cells are drawn"
            page.evaluate("name => window.cellucidViewer.colorByGene(name)", "GENE00007")
            wait_state(page, "ready")
            after = plot_pixels(page)
            assert (after != before).any(), "colouring by a remote gene changes the plot"
            assert not errors
        finally:
            page.close()
    finally:
        session.close()
