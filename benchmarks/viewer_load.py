"""Built-in viewer: page load to first frame, and recolouring by a gene, in Chromium.

For synthetic CSR files of 100k and 1M cells (20k genes, ~311 stored values per cell;
the same files as benchmarks/gene_vectors.py), served by the real server in this
process, opened by headless Chromium with software WebGL2 (SwiftShader):

* load: `page.goto` to `data-viewer-state="ready"` (first frame drawn with the default
  colouring, here the auto-picked `cell_type`), fresh browser context each run (empty
  HTTP cache), median / min / max of --runs;
* first gene: recolour by a gene before the gene index exists (the server scans X);
* indexed gene: once the index is built, median of three other genes.
Recolour times are measured in the page: from the call until the frame is drawn.

Usage: .venv/bin/python benchmarks/viewer_load.py [--sizes 100k,1m] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from benchmarks._common import DATA  # noqa: E402
from benchmarks.gene_vectors import SIZES, dataset_file  # noqa: E402
from cellucid_desktop.server.registry import DatasetRegistry  # noqa: E402
from cellucid_desktop.server.runner import ServerThread  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.viewer.browser import launch_chromium  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
RECOLOUR = "async (name) => { const t = performance.now(); await window.cellucidViewer.colorByGene(name); " \
           "if (document.documentElement.dataset.viewerState !== 'ready') throw new Error(document.documentElement.dataset.viewerError); " \
           "return performance.now() - t; }"


def load_once(browser: Browser, url: str) -> tuple[float, object]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function("['ready', 'error'].includes(document.documentElement.dataset.viewerState)",
                           timeout=120_000, polling=10)
    elapsed = time.perf_counter() - start
    state = page.evaluate("document.documentElement.dataset.viewerState")
    if state != "ready":
        raise RuntimeError(page.evaluate("document.documentElement.dataset.viewerError"))
    return elapsed, (context, page)


def index_ready(server: ServerThread, dataset_id: str) -> bool:
    request = urllib.request.Request(f"{server.url}/api/v1/datasets/{dataset_id}/gene-index",
                                      headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        status = json.load(r)
    if status["status"] == "failed":
        raise RuntimeError(status["message"])
    return status["status"] == "ready"


def measure(browser: Browser, label: str, runs: int) -> dict:
    registry = DatasetRegistry()
    dataset = registry.add(dataset_file(label), dataset_id=f"genes-{label}")
    with ServerThread(registry) as server:
        url = server.url_with_token(f"/?dataset={dataset.id}")
        load_once(browser, url)[1][0].close()  # warm the server's page cache and readers
        loads = []
        for _ in range(runs):
            elapsed, (context, _page) = load_once(browser, url)
            loads.append(elapsed)
            context.close()
        _, (context, page) = load_once(browser, url)
        first = page.evaluate(RECOLOUR, "GENE00001")
        wait_for(lambda: index_ready(server, dataset.id), timeout=1800, interval=1,
                 what="the gene index")
        indexed = [page.evaluate(RECOLOUR, name) for name in ("GENE00002", "GENE00500", "GENE12345")]
        context.close()
    return {"label": label, "cells": SIZES[label], "loads": loads, "first": first / 1e3,
            "indexed": statistics.median(indexed) / 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # a fresh cache folder, so the gene index is built from scratch and removed after
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="viewer-bench-cache-", dir=DATA) as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            renderer = browser.new_page().evaluate(
                "(() => { const g = document.createElement('canvas').getContext('webgl2'); "
                "const d = g.getExtension('WEBGL_debug_renderer_info'); "
                "return g.getParameter(d ? d.UNMASKED_RENDERER_WEBGL : g.RENDERER); })()")
            rows = [measure(browser, label, args.runs) for label in args.sizes.split(",")]
            browser.close()
    print(f"Chromium {browser.version}, WebGL: {renderer}")
    print(f"{'cells':>9} | {'load→ready median (min–max) s':>30} | {'1st gene (no index) s':>21} | {'gene, indexed s':>15}")
    print("-" * 86)
    for r in rows:
        loads = r["loads"]
        span = f"{statistics.median(loads):.2f} ({min(loads):.2f}–{max(loads):.2f})"
        print(f"{r['cells']:>9,} | {span:>30} | {r['first']:>21.2f} | {r['indexed']:>15.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
