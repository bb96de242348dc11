"""Pieces several benchmarks repeat: cached synthetic files, page-cache warming,
/proc memory readings, private XDG user folders and a private desktop for the app."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data"
XDG_VARS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")


def synthetic_file(file_name: str, n_cells: int, n_genes: int, **options: Any) -> Path:
    """benchmarks/data/FILE_NAME, made once by make_synthetic (written under a .partial name
    and renamed, so an interrupted run never leaves a half file to be reused)."""
    path = DATA / file_name
    if path.exists():
        return path
    from cellucid_desktop.data.synthetic import make_synthetic

    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.h5ad")
    print(f"generating {path} (once) ...", flush=True)
    make_synthetic(partial, n_cells, n_genes, **options)
    partial.rename(path)
    return path


def warm_page_cache(path: Path) -> None:
    """Read the whole file once so the servers measured read it from memory, not disk."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass


def proc_status_kb(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            out[key] = int(value.split()[0])
    return out


def xdg_env(root: Path, env: dict[str, str]) -> dict[str, str]:
    """``env`` with the XDG user folders pointed at fresh folders under ``root``."""
    env = dict(env)
    for var in XDG_VARS:
        (root / var).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / var)
    return env


@contextlib.contextmanager
def app_desktop(root: Path) -> Iterator[dict[str, str]]:
    """The environment for running the app (tests/desktop/gui.App) on a private Xvfb and
    D-Bus session bus, with XDG folders under ``root``; both stop at the end."""
    from tests.desktop.gui import new_token
    from tests.helpers import wait_for

    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    bus_path = root / "bus"
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork",
                            f"--address=unix:path={bus_path}"])
    try:
        env = xdg_env(root, {
            **os.environ, "DISPLAY": f":{xvfb.stdout.readline().strip()}",
            "DBUS_SESSION_BUS_ADDRESS": f"unix:path={bus_path}", "NO_AT_BRIDGE": "1",
            "CELLUCID_DESKTOP_TEST_TOKEN": new_token(), "PYTHONUNBUFFERED": "1"})
        wait_for(bus_path.exists, 20, what="dbus-daemon")
        yield env
    finally:
        for proc in (bus, xvfb):
            proc.terminate()
            proc.wait(10)


# The access token the benchmarks give `cellucid-desktop serve` (with --token-file), so
# they measure the default, token-protected server; cellucid ignores the header.
BENCH_TOKEN = "benchmark-access-token-0123456789"
BENCH_AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}


def token_file(folder: Path) -> Path:
    """BENCH_TOKEN in a 0600 file in ``folder``, for ``serve --token-file``."""
    path = folder / "bench.token"
    path.touch(mode=0o600)
    path.write_text(BENCH_TOKEN)
    return path
