"""`cellucid-desktop webapp fetch|status|clear`: manage the cached Cellucid web app."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from cellucid_desktop.cli.output import error, field_line

if TYPE_CHECKING:
    from cellucid_desktop.server.webapp_cache import ProgressCallback, WebAppCache

HELP = "download, inspect or remove the cached official Cellucid web app"
DESCRIPTION = """\
The official Cellucid web app is not shipped with Cellucid Desktop: it is downloaded
from its published build inventory (https://www.cellucid.com by default), every file
checked against its SHA-256, and cached in your user cache folder. The app then works
offline and checks for a newer build at most once a day.

  fetch    check the source now and download its build if it differs from the cache
  status   show what is cached, and verify every file
  clear    remove the cached build (the built-in viewer is unaffected)"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("webapp", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["fetch", "status", "clear"])
    p.add_argument("--source", metavar="URL", default=None,
                   help="where the build is published (default https://www.cellucid.com; "
                        "plain http only for this computer)")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="cache folder (default: <user cache>/cellucid-desktop/webapp)")


def run(args: argparse.Namespace) -> int:
    from cellucid_desktop.server.webapp_cache import WebAppCache
    from cellucid_desktop.webapp_source import WebAppError, default_source_url

    try:
        cache = WebAppCache(args.cache_dir, source_url=args.source or default_source_url())
        if args.action == "fetch":
            build = cache.fetch(_progress_printer())
            print(f"Cellucid web app build {build.build_id}: {len(build.inventory.assets)} "
                  f"files, {_megabytes(build.inventory.total_bytes)}, in {build.directory}")
        elif args.action == "status":
            _print_status(cache)
        else:
            cache.clear()
            print(f"Removed the cached Cellucid web app from {cache.root}")
    except WebAppError as exc:
        return error(str(exc))
    return 0


def _print_status(cache: WebAppCache) -> None:
    build = cache.current()
    if build is None:
        print(f"No Cellucid web app is cached in {cache.root}; run "
              "`cellucid-desktop webapp fetch`.")
        return
    verified = cache.cached_build() is not None if build.source_url == cache.source_url \
        else None
    lines = [("Build", build.build_id), ("Source", build.source_url),
             ("Files", f"{len(build.inventory.assets)} ({_megabytes(build.inventory.total_bytes)})"),
             ("Fetched", _when(build.fetched_at)), ("Last checked", _when(build.checked_at)),
             ("Verified", {True: "yes, every file matches its SHA-256",
                           False: "NO: run `cellucid-desktop webapp fetch`",
                           None: "(from another source than the one asked for)"}[verified]),
             ("Folder", str(build.directory))]
    for label, value in lines:
        print(field_line(label, value))


def _progress_printer() -> ProgressCallback | None:
    """A progress callback drawing one self-overwriting line on a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, path: str) -> None:
        percent = 100 * done // total if total else 100
        sys.stderr.write(f"\r  {percent:3d}%  {_megabytes(done)} of {_megabytes(total)}  "
                         f"{path[-40:]:<40}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
