"""The owner's browser (headless Chromium) and a token-protected server: the printed
Viewer URL just works, the token leaves the address bar, and the cookie it leaves is
out of the page's reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.viewer.viewer_page import wait_state


@pytest.fixture(scope="module")
def private_server(small_h5ad: Path) -> Iterator[ServerThread]:
    registry = DatasetRegistry()
    registry.add(small_h5ad, dataset_id="small-test")
    with ServerThread(registry) as server:
        yield server


@pytest.fixture()
def fresh(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert not errors, errors


def test_the_viewer_url_opens_the_viewer_and_drops_the_token(
        fresh: Page, private_server: ServerThread) -> None:
    fresh.goto(private_server.url_with_token("/?dataset=small-test"))
    wait_state(fresh, "ready")
    # (the viewer then writes its view into the address: embedding, colour)
    assert fresh.url.startswith(f"{private_server.url}/?dataset=small-test")
    assert "token=" not in fresh.url
    assert fresh.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    # about:blank, then the viewer: the tokened address left no entry of its own
    assert fresh.evaluate("history.length") == 2
    fresh.reload()
    wait_state(fresh, "ready")  # the cookie carries on
    cookies = fresh.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        (f"cellucid-token-{private_server.port}", True, "Strict")]


def test_without_the_token_the_page_asks_for_it_and_accepts_it(
        fresh: Page, private_server: ServerThread) -> None:
    fresh.goto(f"{private_server.url}/?dataset=small-test")
    assert "Access token" in fresh.content()
    fresh.fill("input[name=token]", private_server.token)
    fresh.click("button[type=submit]")
    wait_state(fresh, "ready")
    assert fresh.url.startswith(f"{private_server.url}/?dataset=small-test")
    assert "token=" not in fresh.url


def test_a_link_from_another_site_still_opens_the_viewer(
        fresh: Page, private_server: ServerThread) -> None:
    """A SameSite=Strict cookie set while following a link from another site is not sent
    on the redirect that follows; the viewer must open anyway."""
    link = private_server.url_with_token("/?dataset=small-test")
    fresh.goto(f"data:text/html,<a id=go href='{link}'>open</a>")
    fresh.click("#go")
    wait_state(fresh, "ready")
    assert "token=" not in fresh.url
    # about:blank, the page with the link, the viewer: the tokened page replaced itself
    assert fresh.evaluate("history.length") == 3


def test_another_local_origin_cannot_read_the_data_with_the_cookie(
        fresh: Page, private_server: ServerThread, small_h5ad: Path) -> None:
    """A page on another 127.0.0.1 port is the same site: the cookie goes along, but our
    CORS answer never allows credentials, so the page reads nothing."""
    fresh.goto(private_server.url_with_token("/?dataset=small-test"))
    wait_state(fresh, "ready")
    registry = DatasetRegistry()
    with ServerThread(registry, token=None) as other:
        fresh.goto(f"{other.url}/_cellucid/health")
        outcome = fresh.evaluate(f"""async () => {{
            try {{
                const r = await fetch("{private_server.url}/_cellucid/datasets",
                                      {{credentials: "include"}});
                return "read " + (await r.text()).length;
            }} catch (e) {{ return "blocked"; }}
        }}""")
    assert outcome == "blocked"
