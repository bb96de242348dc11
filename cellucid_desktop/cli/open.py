"""`cellucid-desktop open FILE...`: open files in the running app (starting it if needed)."""

from __future__ import annotations

import argparse

from cellucid_desktop.cli.app import add_open_arguments, start_or_forward

HELP = "open datasets in the running app (starts the app if it is not running)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("open", help=HELP, description=HELP.capitalize() + ".")
    add_open_arguments(p)


def run(args: argparse.Namespace) -> int:
    return start_or_forward(list(args.files), args.demo)
