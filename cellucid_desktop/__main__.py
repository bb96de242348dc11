"""`python -m cellucid_desktop` runs the command line (and, frozen, the app)."""

import multiprocessing

from cellucid_desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the tray child re-executes a frozen binary
    raise SystemExit(main())
