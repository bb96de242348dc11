"""Opening a remote file end to end: from "Open" to the viewer's first frame.

The app's own path, with real parts on this machine: a real sshd on 127.0.0.1 as the
login host (key sign-in, a fresh master each run, so the sign-in is counted), the
server started there by ``RemoteOpen`` through the environment line (our
``cellucid-desktop serve`` on a private socket, and ``cellucid serve`` 0.9.5 on a port
it picks), or in a job of a private real Slurm (one node, this machine; no other jobs,
so the queue wait is ~0 here and adds to the totals on a real cluster), the tunnel
over the master, and headless Chromium loading the built-in viewer until its
``data-viewer-state="ready"`` (first frame drawn).

Columns (seconds, median (min-max) of --runs): ``open`` = ``RemoteOpen.open()`` (sign
in, find the program, start the server or submit and wait for the job, tunnel, probe);
``first frame`` = page load to ``ready``; ``total`` = both; ``queued`` = from the job's
submission to squeue saying RUNNING (within ``open``; the app polls squeue every 0.5 s);
``stop`` = ``close()`` (server stopped, waiting until its PID is gone, or job cancelled).
The last column compares each total with `cellucid serve` in the same place, same run.

Usage: .venv/bin/python benchmarks/remote_open.py [--size 100k] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from benchmarks.gene_vectors import SIZES, dataset_file  # noqa: E402
from benchmarks.viewer_load import load_once  # noqa: E402
from cellucid_desktop.remote.master import MasterPool  # noqa: E402
from cellucid_desktop.remote.opening import LaunchPlan, OpenStatus, RemoteOpen  # noqa: E402
from cellucid_desktop.remote.prompt_broker import PromptBroker  # noqa: E402
from cellucid_desktop.remote.slurm_job import SlurmOptions  # noqa: E402
from cellucid_desktop.remote.ssh_command import TunnelSpec  # noqa: E402
from tests.remote.slurm import SlurmCluster  # noqa: E402
from tests.remote.sshd import SshLab  # noqa: E402
from tests.viewer.browser import launch_chromium  # noqa: E402

ENV = f"PATH={Path(sys.executable).parent}:$PATH"


def one_run(lab: SshLab, browser, path: Path, program: str, where: str,
            cluster: SlurmCluster | None) -> dict[str, float]:
    env = ENV if cluster is None else f"export SLURM_CONF={cluster.conf}; {ENV}"
    plan = LaunchPlan(TunnelSpec("login", config_file=str(lab.config)), str(path),
                      where=where, env=env, program=program,
                      slurm=SlurmOptions(time="30") if where == "slurm" else None)
    phases: list[tuple[float, OpenStatus]] = []

    def note(status: OpenStatus) -> None:
        phases.append((time.perf_counter(), status))

    with PromptBroker(lambda request: None) as broker:
        pool = MasterPool(broker)
        opening = RemoteOpen(plan, masters=pool, on_status=note)
        try:
            began = time.perf_counter()
            view = opening.open()
            opened = time.perf_counter() - began
            frame, (context, _page) = load_once(browser, view.url)
            context.close()
            submitted = [t for t, s in phases if s.phase == "queued"]
            running = [t for t, s in phases if s.detail.get("queue_state") == "RUNNING"]
            stop_began = time.perf_counter()
            opening.close()
            stopped = time.perf_counter() - stop_began
        finally:
            opening.close()
            if opening.started is not None:
                shutil.rmtree(opening.started.run_dir, ignore_errors=True)
            pool.close_all()
    return {"open": opened, "frame": frame, "total": opened + frame,
            "queued": (running[0] - submitted[0]) if running else 0.0, "stop": stopped}


def span(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="100k", choices=sorted(SIZES))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    path = dataset_file(args.size)
    rows: list[tuple[str, str, dict[str, list[float]]]] = []
    with tempfile.TemporaryDirectory(prefix="remote-open-bench-") as tmp:
        root = Path(tmp)
        lab = SshLab(root).start()
        (root / "slurm").mkdir()
        cluster = SlurmCluster(root / "slurm").start()
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                for where in ("host", "slurm"):
                    for program in ("cellucid-desktop", "cellucid"):
                        runs = [one_run(lab, browser, path, program, where,
                                        cluster if where == "slurm" else None)
                                for _ in range(args.runs)]
                        rows.append((where, program, {key: [r[key] for r in runs]
                                                      for key in runs[0]}))
                browser.close()
        finally:
            cluster.stop()
            lab.stop()
    print(f"{SIZES[args.size]:,} cells, {args.runs} runs each; seconds, median (min-max)")
    head = (f"{'where':<6} | {'server':<17} | {'open':>17} | {'first frame':>17} | "
            f"{'total':>17} | {'queued':>6} | {'stop':>5} | total vs cellucid")
    print(head)
    print("-" * len(head))
    reference = {where: statistics.median(t["total"]) for where, program, t in rows
                 if program == "cellucid"}
    for where, program, t in rows:
        ratio = statistics.median(t["total"]) / reference[where]
        print(f"{where:<6} | {program:<17} | {span(t['open']):>17} | {span(t['frame']):>17} | "
              f"{span(t['total']):>17} | {statistics.median(t['queued']):>6.2f} | "
              f"{statistics.median(t['stop']):>5.2f} | {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
