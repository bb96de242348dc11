"""`cellucid-desktop [FILES...] [--demo]`: start the desktop app (the default command)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from cellucid_desktop.cli.output import error

if TYPE_CHECKING:
    from cellucid_desktop.desktop.instance import Instance

HELP = "start the desktop app (the default when no command is given)"
DESCRIPTION = """\
Start Cellucid Desktop: a tray icon, a home window (Open dataset..., drop zone, Recent,
Connect to remote...) and one viewer window per open dataset.

Only one app runs per user: starting it again (with or without files) hands the files to
the running app, brings its home window forward, and returns at once.

Home window shortcuts: Ctrl+O open dataset, Ctrl+Shift+O open a Zarr store folder,
Ctrl+D demo dataset, Ctrl+K connect to remote, Ctrl+, settings. Closing the home window keeps the app in the tray (a setting);
quit from the tray menu or with `cellucid-desktop quit`."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("app", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_open_arguments(p)
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print the log on the terminal")


def add_open_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="DATASET",
                   help="datasets to open: .h5ad, .h5mu (its expression modality; the home "
                        "window offers the others) or .loom files, .zarr store folders or "
                        ".zarr.zip files")
    p.add_argument("--demo", action="store_true",
                   help="also open the built-in demo dataset (generated on first use)")


def run(args: argparse.Namespace) -> int:
    return start_or_forward(list(args.files), args.demo, getattr(args, "verbose", False))


def start_or_forward(files: list[str], demo: bool, verbose: bool = False) -> int:
    """Hand the files to the running app, or become the app."""
    from cellucid_desktop.desktop.instance import AlreadyRunning, find_running
    from cellucid_desktop.logs import setup_logging

    setup_logging(verbose)
    running = find_running()
    if running is not None:  # headless: a second launch never loads the GUI modules
        return forward(files, demo, running)
    if not has_display():
        return error("no graphical display found (DISPLAY is not set), so no window can "
                     "open. Run the app in a desktop session, or serve the data without "
                     "windows: cellucid-desktop serve --demo")
    from cellucid_desktop.desktop import qtenv
    from cellucid_desktop.desktop.app import DesktopApp
    from cellucid_desktop.desktop.control import test_token_from_env

    qtenv.configure()
    try:
        return DesktopApp(test_token=test_token_from_env()).run(files, demo)
    except AlreadyRunning:  # another launch won the race to the lock: hand it our files
        return forward(files, demo)


def forward(files: list[str], demo: bool, running: Instance | None = None) -> int:
    """Hand the files to the running app and say how it went; the exit code."""
    from cellucid_desktop.desktop.instance import InstanceError, hand_over

    try:
        results = hand_over(files, demo, running)
    except InstanceError as exc:
        return error(str(exc))
    failed = [r for r in results if not r.get("ok")]
    for result in failed:
        error(result.get("error") or f"Could not open {result.get('path')}")
    print("Handed over to the running Cellucid Desktop.", flush=True)
    return 1 if failed and len(failed) == len(results) else 0


def has_display() -> bool:
    """Whether Qt can open windows here: always on macOS/Windows, else an X11 or
    Wayland display, or a Qt platform chosen explicitly (e.g. offscreen for tests)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
