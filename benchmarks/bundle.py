"""Size and start-up time of the frozen Linux bundle (packaging/build-linux.sh output).

Usage: .venv/bin/python benchmarks/bundle.py [BUILD_DIR] [--runs N]
BUILD_DIR defaults to build/linux (run `packaging/build-linux.sh` first; it also writes
the .tar.gz measured here). Start-up times are medians over N runs (default 5):
binary start -> `--version` printed; -> `serve --demo` answering /_cellucid/health;
-> the app's home window loaded (needs an X display: run under xvfb-run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import xdg_env  # noqa: E402


def du_mb(path: Path) -> float:
    """Unpacked size on disk, as `du -s` counts it."""
    out = subprocess.run(["du", "-s", "--block-size=1M", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return float(out.split()[0])


def time_version(binary: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(binary), "--version"], check=True, capture_output=True, timeout=120)
    return time.perf_counter() - start


def _until_line(proc: subprocess.Popen, pattern: str) -> re.Match:
    for line in proc.stdout:
        if match := re.search(pattern, line):
            return match
    raise RuntimeError(f"the binary exited before printing {pattern!r}")


def _get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return r.read()


def time_serve_health(binary: Path, env: dict[str, str]) -> float:
    """Binary start -> first 200 from /_cellucid/health (demo file already generated)."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(binary), "serve", "--demo", "--port", "0", "--no-browser"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _until_line(proc, r"^  Local URL:\s+(\S+)$").group(1)
        _get(f"{url}/_cellucid/health")
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)


def time_home_window(binary: Path, env: dict[str, str]) -> float:
    """Binary start -> the home window reports loaded (through the app's test surface)."""
    token = secrets.token_hex(16)
    env = {**env, "CELLUCID_DESKTOP_TEST_TOKEN": token, "NO_AT_BRIDGE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = _until_line(proc, r"Cellucid Desktop is running at (http://127\.0\.0\.1:\d+)").group(1)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            windows = json.loads(_get(f"{url}/__test__/windows", {"X-Cellucid-Test-Token": token}))
            if any(w["key"] == "home" and w["loaded_at"] for w in windows["windows"]):
                return time.perf_counter() - start
            time.sleep(0.05)
        raise RuntimeError("the home window did not load within 120 s")
    finally:
        subprocess.run([str(binary), "quit"], env=env, capture_output=True, timeout=60)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def median(runs: int, measure: Callable[[], float]) -> str:
    return f"{statistics.median(measure() for _ in range(runs)):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", nargs="?", type=Path, default=ROOT / "build" / "linux")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    bundle = args.build_dir / "dist" / "cellucid-desktop"
    binary = bundle / "cellucid-desktop"
    if not binary.is_file():
        sys.exit(f"no bundle at {bundle}; run packaging/build-linux.sh {args.build_dir} first")

    rows = [("bundle unpacked (du)", f"{du_mb(bundle):.0f} MB"),
            ("  of which PySide6 (Qt WebEngine)", f"{du_mb(bundle / '_internal' / 'PySide6'):.0f} MB")]
    tarballs = sorted(args.build_dir.glob("cellucid-desktop-*.tar.gz"))
    if tarballs:
        rows.append((f"{tarballs[-1].name}", f"{tarballs[-1].stat().st_size / 2**20:.0f} MB"))
    with tempfile.TemporaryDirectory() as tmp:
        env = xdg_env(Path(tmp), dict(os.environ))  # the demo file and settings are this run's own
        subprocess.run([str(binary), "--version"], check=True, capture_output=True)  # warm the page cache
        rows.append((f"start -> --version (median of {args.runs})", median(args.runs, lambda: time_version(binary))))
        time_serve_health(binary, env)  # first run generates the demo dataset
        rows.append((f"start -> serve --demo health (median of {args.runs})",
                     median(args.runs, lambda: time_serve_health(binary, env))))
        if os.environ.get("DISPLAY"):
            rows.append((f"start -> home window loaded (median of {args.runs})",
                         median(args.runs, lambda: time_home_window(binary, env))))
        else:
            rows.append(("start -> home window loaded", "skipped: no DISPLAY (use xvfb-run)"))

    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
