"""`cellucid-desktop integrate`: menu entry, icon and dataset double-click for this user."""

from __future__ import annotations

import argparse
import sys

from cellucid_desktop.cli.output import error

HELP = ("add Cellucid Desktop to the desktop menu and open dataset files with it "
        "(--remove undoes)")
DESCRIPTION = """\
Register this installation of Cellucid Desktop with the desktop, for the current user
only: a menu entry with its icon, and the dataset types opening in the app on
double-click and under "Open with": AnnData (*.h5ad), MuData (*.h5mu), loom (*.loom) and,
on Linux, zipped Zarr stores (*.zarr.zip). Zarr store folders cannot be associated on
Linux or Windows (every folder has one type there): open them from the app or drop them.

Linux: writes under $XDG_DATA_HOME (~/.local/share) and runs update-mime-database,
update-desktop-database and xdg-mime when installed. Windows: writes HKEY_CURRENT_USER
keys. macOS: nothing to do here; Cellucid Desktop.app declares the type itself."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("integrate", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--remove", action="store_true", help="remove what integrate added")
    p.add_argument("--no-default", action="store_true",
                   help="Linux: list the app under \"Open with\" without making it the default")


def run(args: argparse.Namespace) -> int:
    if sys.platform == "darwin":
        return error("on macOS the file associations come with Cellucid Desktop.app; "
                     "drag the app to Applications instead of running integrate")
    try:
        if sys.platform == "win32":
            return _windows(args.remove)
        return _linux(args.remove, make_default=not args.no_default)
    except (OSError, RuntimeError) as exc:
        return error(f"could not update the desktop integration ({exc}); "
                     "check that you may write to your user settings")


def _windows(remove: bool) -> int:
    from cellucid_desktop.integration import launch_command, windows

    if remove:
        windows.remove()
        print("Removed the dataset associations from the registry.")
    else:
        windows.install(launch_command())
        print("Registered .h5ad, .h5mu and .loom files to open with Cellucid Desktop.")
    return 0


def _linux(remove: bool, make_default: bool) -> int:
    from cellucid_desktop.integration import launch_command, linux

    report = linux.remove() if remove else linux.install(launch_command(), make_default=make_default)
    for path in report.files:
        print(f"  {'removed' if remove else 'wrote'}  {path}")
    for step in report.steps:
        print(f"  {step}")
    if report.missing_tools:
        print(f"Note: {', '.join(report.missing_tools)} not installed; the menu and file type "
              "may need a new login to appear (install xdg-utils, desktop-file-utils and "
              "shared-mime-info).")
    print("Removed Cellucid Desktop from the desktop." if remove
          else "Cellucid Desktop is in the menu and opens .h5ad, .h5mu, .loom and .zarr.zip "
               "files.")
    return 0
