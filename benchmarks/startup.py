"""Desktop app start-up: process start → home window loaded, and `open FILE` → viewer ready.

The real app (Qt WebEngine under a private Xvfb with software GL, a private D-Bus), one
process per run, as a user runs it:

* start: from just before the process is spawned until the home window's page has
  loaded (pywebview's ``loaded`` event, time-stamped inside the app and read through
  the test surface);
* open: from just before ``cellucid-desktop open FILE`` is spawned (a second process that
  hands the file to the running app) until the new viewer window reports
  ``document.documentElement.dataset.viewerState == "ready"`` (first frame drawn).

One uncounted warm-up run fills Qt's caches first (as on a machine where the app ran
before); the user folders are shared by the runs. Median / min / max of --runs.

Usage: .venv/bin/python benchmarks/startup.py [--runs 5] [--cells 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import app_desktop, synthetic_file  # noqa: E402
from tests.desktop.gui import App, run_cli  # noqa: E402
from tests.helpers import wait_for  # noqa: E402

TARGET_S = 3.0


def dataset(cells: int) -> Path:
    return synthetic_file(f"startup-{cells}.h5ad", cells, 2000, genes_per_cell=250, seed=7,
                          dataset_id="startup-bench", name="Startup benchmark")


def one_run(env: dict[str, str], data: Path) -> tuple[float, float]:
    started = time.time()
    app = App(env)
    try:
        loaded = app.wait_window("home", timeout=120)["loaded_at"] - started
        before_open = time.time()
        handed = run_cli(env, "open", str(data))
        if handed.returncode != 0:
            raise RuntimeError(handed.stderr)
        app.wait_window("viewer:startup-bench", timeout=120)
        wait_for(lambda: app.eval("viewer:startup-bench",
                                  "document.documentElement.dataset.viewerState") == "ready",
                 120, interval=0.02, what="viewer ready")
        opened = time.time() - before_open
    finally:
        app.stop()
    return loaded, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cells", type=int, default=20_000)
    args = parser.parse_args()
    data = dataset(args.cells)

    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp, \
            app_desktop(Path(tmp)) as env:
        one_run(env, data)  # warm-up, not counted
        runs = [one_run(env, data) for _ in range(args.runs)]

    print(f"Desktop start-up, {args.cells:,} cells, {args.runs} runs (seconds)\n")
    print("| step | median | min | max | target |")
    print("|---|---|---|---|---|")
    for label, values in (("start → home window loaded", [r[0] for r in runs]),
                          ("`open FILE` → viewer ready", [r[1] for r in runs])):
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | "
              f"{max(values):.2f} | ≤ {TARGET_S:.0f} |")


if __name__ == "__main__":
    main()
