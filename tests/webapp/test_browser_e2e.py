"""End to end in real Chromium: a page served from the web-app origin runs its module
script (refused by browsers under a wrong content type) and reads the datasets
document and a Range of the store from its own origin."""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Browser

from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.webapp_assets import start_webapp_server, webapp_viewer_url
from cellucid_desktop.server.webapp_cache import WebAppCache
from tests.webapp.source import BuildSource

def test_page_on_webapp_origin_reads_datasets_and_store_range(
        source: BuildSource, cache: WebAppCache, registry: DatasetRegistry,
        small_h5ad: Path, browser: Browser) -> None:
    cache.fetch()
    server = start_webapp_server(registry, cache)
    try:
        page = browser.new_page()
        try:
            page.goto(webapp_viewer_url(server))
            page.wait_for_function(
                "document.getElementById('out').textContent !== 'loading'", timeout=30_000)
            text = page.locator("#out").text_content()
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        finally:
            page.close()
    finally:
        server.stop()
    result = json.loads(text or "null")
    size = small_h5ad.stat().st_size
    assert result == {"ids": ["small-test"], "status": 206, "range": f"bytes 0-7/{size}",
                      "head": list(b"\x89HDF\r\n\x1a\n")}
    assert background == "rgb(17, 34, 51)"  # the stylesheet was applied
