"""Web-app cache: what a start costs us against `cellucid serve`'s forced download.

A synthetic build (``--files`` files, ``--mb`` MB in total, random bytes, so nothing
compresses) is published on 127.0.0.1 by the tests' stand-in source. Timed, best of
``--repeat``:

* cellucid 0.9.5 ``ensure_web_ui_cached(force=True)``: what every `cellucid serve` start does;
* ours, cold: the first download into an empty cache;
* ours, ``ensure()`` within a day: a start with a fresh cache (no network at all);
* ours, ``fetch()`` of an unchanged build: the daily check (inventory only);
* ours, ``fetch()`` after one file changed: an update (one download, the rest copied);
* serving every asset from the web-app origin, first pass (each file hashed once) and
  second pass (verified versions remembered).

    .venv/bin/python benchmarks/webapp_cache.py [--files 200] [--mb 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cellucid.web_cache import ensure_web_ui_cached  # noqa: E402

from cellucid_desktop.server.registry import DatasetRegistry  # noqa: E402
from cellucid_desktop.server.runner import ServerThread  # noqa: E402
from cellucid_desktop.server.webapp_assets import start_webapp_server  # noqa: E402
from cellucid_desktop.server.webapp_cache import WebAppCache  # noqa: E402
from tests.webapp.source import BuildSource, index_html, publish  # noqa: E402


def best(repeat: int, run: Callable[[], object], before: Callable[[], object] = lambda: None
         ) -> float:
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def build_files(n_files: int, total_mb: float, version: str) -> dict[str, tuple[bytes, str]]:
    size = int(total_mb * 1e6 / n_files)
    files = {f"assets/chunk-{i:04d}.js": (os.urandom(size), "text/javascript; charset=utf-8")
             for i in range(n_files)}
    files["index.html"] = (index_html(version), "text/html; charset=utf-8")
    return files


def serve_all(server: ServerThread, paths: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    for path in paths:
        conn.request("GET", "/" + path, headers={"Authorization": f"Bearer {server.token}"})
        response = conn.getresponse()
        response.read()
        assert response.status == 200, (path, response.status)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    files = build_files(args.files, args.mb, "v1")
    source = BuildSource(publish("v1", files)).start()
    work = Path(tempfile.mkdtemp(prefix="webapp-bench-"))
    theirs, ours = work / "theirs", work / "ours"
    cache = WebAppCache(ours, source_url=source.url)
    rows: list[tuple[str, float]] = []
    try:
        rows.append(("cellucid 0.9.5 start (forced full download)", best(
            args.repeat, lambda: ensure_web_ui_cached(cache_dir=theirs, source_url=source.url,
                                                      show_progress=False))))
        rows.append(("ours: cold download", best(
            args.repeat, cache.fetch, lambda: shutil.rmtree(ours, ignore_errors=True))))
        rows.append(("ours: start with a fresh cache (ensure)", best(args.repeat, cache.ensure)))
        rows.append(("ours: daily check, build unchanged", best(args.repeat, cache.fetch)))
        version = iter(range(10**6))

        def change_one_file() -> None:
            n = next(version)
            changed = dict(files)
            changed["index.html"] = (index_html(f"v{n + 2}"), "text/html; charset=utf-8")
            changed["assets/chunk-0000.js"] = (os.urandom(len(files["assets/chunk-0000.js"][0])),
                                               "text/javascript; charset=utf-8")
            source.routes = publish(f"v{n + 2}", changed)

        rows.append(("ours: update, one file changed", best(args.repeat, cache.fetch,
                                                           change_one_file)))
        registry = DatasetRegistry()
        server = start_webapp_server(registry, cache)
        paths = [asset.path for asset in cache.current().inventory.assets]
        try:
            rows.append((f"serve all {len(paths)} assets, first pass (hash each)",
                         best(1, lambda: serve_all(server, paths))))
            rows.append((f"serve all {len(paths)} assets, later pass",
                         best(args.repeat, lambda: serve_all(server, paths))))
        finally:
            server.stop()
    finally:
        source.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"build: {args.files} files, {args.mb:g} MB; best of {args.repeat}\n")
    print(f"| {'case':<48} | {'seconds':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|")
    for name, seconds in rows:
        print(f"| {name:<48} | {seconds:8.3f} |")


if __name__ == "__main__":
    main()
