"""`cellucid-desktop`: the app with no command, or one of the commands below.

Each command lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``; heavy imports happen inside ``run`` so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from cellucid_desktop import __version__
from cellucid_desktop.remote import askpass

# Subcommand modules under cellucid_desktop.cli, in the order --help lists them.
COMMANDS = ["app", "open", "connect", "quit", "serve", "integrate", "webapp"]

DESCRIPTION = """\
Cellucid Desktop: look at single-cell data on your laptop, from local files or from a
server on your cluster. It opens AnnData (.h5ad, and Zarr stores: .zarr folders or
zipped .zarr.zip), MuData (.h5mu: each modality is a dataset) and loom (.loom) files.

Run with no command to start the app, or with one of the commands below."""

EPILOG = """\
examples:
  cellucid-desktop                            start the app (tray + home window)
  cellucid-desktop a.h5ad b.zarr c.h5mu       open datasets (in the running app, if any)
  cellucid-desktop --demo                     start the app on the demo dataset
  cellucid-desktop quit                       quit the running app
  cellucid-desktop serve --demo               serve the built-in demo dataset
  cellucid-desktop serve data.h5ad --port 0   serve a file on any free port
  cellucid-desktop serve cite.h5mu --modality prot   serve one modality of a MuData file
  cellucid-desktop <command> --help           help on one command
"""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="cellucid-desktop", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", "-V", action="version",
                        version=f"cellucid-desktop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    modules = {}
    for name in COMMANDS:
        module = importlib.import_module(f"cellucid_desktop.cli.{name}")
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(askpass.ACTIVATE_ENV) == "1":  # ssh runs us as its SSH_ASKPASS
        return askpass.main(args_list)
    parser, modules = build_parser()
    if "app" in modules and (not args_list or args_list[0] not in modules
                             and args_list[0] not in ("-h", "--help", "-V", "--version")):
        args_list = ["app", *args_list]  # no command: start the desktop app
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(modules[args.command].run(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted by user", file=sys.stderr)
        return 130
