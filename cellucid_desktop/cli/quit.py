"""`cellucid-desktop quit`: ask the running app to quit."""

from __future__ import annotations

import argparse

from cellucid_desktop.cli.output import error

HELP = "quit the running app (windows, tray and server)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("quit", help=HELP, description=HELP.capitalize() + ".")


def run(_args: argparse.Namespace) -> int:
    from cellucid_desktop.desktop.instance import InstanceError, find_running

    running = find_running()
    if running is None:
        return error("Cellucid Desktop is not running.")
    try:
        running.call("quit")
    except OSError as exc:
        return error(f"The running Cellucid Desktop did not answer ({exc}).")
    except InstanceError as exc:
        return error(str(exc))
    print("Cellucid Desktop is quitting.")
    return 0
