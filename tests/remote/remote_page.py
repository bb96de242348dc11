"""A remote dataset opened as a user opens it (tunnel, local proxy) in a Chromium page,
for the remote viewer tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page

from cellucid_desktop.remote.session import RemoteSession
from tests.remote.conftest import spec_for
from tests.remote.sshd import SshLab
from tests.viewer.viewer_page import wait_state


@contextmanager
def remote_viewer_page(ssh_lab: SshLab, remote_port: int, browser: Browser,
                       viewport: dict[str, int]) -> Iterator[Page]:
    """The viewer of the remote on `remote_port`, ready; the page must raise no error."""
    session = RemoteSession(spec_for(ssh_lab, remote_port))
    try:
        view = session.open()
        assert not view.direct  # through the local proxy
        page = browser.new_page(viewport=viewport)
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        try:
            page.goto(view.url)
            wait_state(page, "ready")
            yield page
            assert not errors, f"uncaught errors in the page: {errors}"
        finally:
            page.close()
    finally:
        session.close()
