"""Tunnels and the app on a bad day, measured: kills restored and time to recover, a
frozen link, an outage of over a minute, waking from sleep, and Quit.

Real ssh and sshd on loopback (tests/remote/sshd.py), the real `cellucid serve` 0.9.5
and our serve as remotes, the real app under a private Xvfb. Recovery is always
measured the way a user sees it: from the fault until a client that keeps requesting
the user's URL (every 50 ms, tests/remote/faults.py) is served again.

* kill: ssh SIGKILLed --kills times per scenario; restored = back on the same local port
  and the client served again.
  - proxy: cellucid --no-web-ui whose port is taken here, so the local proxy is in
    front; the client reads 64 KiB ranges of the store through it.
  - direct, in flight: our serve on the "compute node" 127.0.0.2 (same local port, no
    proxy); the client reads 8 MiB ranges straight through the tunnel, so a request
    is in flight at most kills.
  - jump host: the proxy case through ssh -J.
* frozen link: the sshd session carrying the tunnel SIGSTOPped (and left so).
* outage: sshd stopped for --outage s, then started on the same port; measured from its
  return.
* sleep: `connect --no-window` and its ssh SIGSTOPped for 10 s while the old session is
  frozen too (the old path is gone); measured from waking.
* quit: `open A`, `open B` (handed to the running app), then `quit`: quit → process gone.

Usage: .venv/bin/python benchmarks/reliability.py [--kills 10] [--runs 3] [--quits 10]
       [--outage 70]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import app_desktop, synthetic_file  # noqa: E402
from cellucid_desktop.remote.session import RemoteSession  # noqa: E402
from cellucid_desktop.remote.ssh_command import TunnelSpec  # noqa: E402
from cellucid_desktop.remote.tunnel import TunnelState  # noqa: E402
from cellucid_desktop.server.access import split_token  # noqa: E402
from tests.desktop.gui import App, run_cli  # noqa: E402
from tests.helpers import wait_for  # noqa: E402
from tests.remote.connect_cli import running_connect, viewer_url  # noqa: E402
from tests.remote.faults import Polling, back_after  # noqa: E402
from tests.remote.servers import cellucid_serve, token_file  # noqa: E402
from tests.remote.sshd import KILL, SshLab, children, thaw  # noqa: E402
from tests.server.reference import ServeProcess  # noqa: E402

STORE = "/_cellucid/anndata/remote-data.h5ad"
Row = tuple[str, str, list[float]]


def data_file() -> Path:
    return synthetic_file("reliability-50k.h5ad", 50_000, 2000, genes_per_cell=120, seed=9,
                          dataset_id="remote-data")


def as_script(view_url: str) -> tuple[str, dict[str, str]]:
    """The viewer URL without its ``?token=`` (which is answered with a redirect to set
    the window's cookie), and that token as a script sends it."""
    url, token = split_token(view_url)
    return url, ({"Authorization": f"Bearer {token}"} if token else {})


def served_again(client: Polling, since: float, timeout: float = 120.0) -> float:
    """Seconds from ``since`` until the client was served again."""
    wait_for(lambda: client.answered_since(since), timeout, interval=0.02,
             what="the client served again")
    return min(start for start, outcome, _ in client.outcomes
               if start >= since and outcome in (200, 206)) - since


def kills(spec: TunnelSpec, count: int, chunk: int, want_direct: bool,
          token: str | None) -> tuple[int, list[float]]:
    session = RemoteSession(spec, token=token)
    try:
        view = session.open()
        assert view.direct == want_direct, view
        url, auth = as_script(view.url)
        base = url.split("/?", 1)[0]
        tunnel, port, restored, times = session.tunnel, session.local_port, 0, []
        with Polling(base + STORE, {"Range": f"bytes=0-{chunk - 1}", **auth}) as client:
            for _ in range(count):
                client.wait_answered("the client served before the kill")
                old, killed = tunnel.pid, time.monotonic()
                os.kill(old, KILL)
                status = back_after(tunnel, old, timeout=120)
                if status.state != TunnelState.CONNECTED or tunnel.local_port != port:
                    break
                times.append(served_again(client, killed))
                restored += 1
        return restored, times
    finally:
        session.close()


def one_recovery(spec: TunnelSpec, fault: Callable[[], Callable[[], None]]) -> float:
    """Open, apply ``fault`` (it returns its undo), then seconds from the moment it
    returned until the client is served again."""
    session = RemoteSession(spec)
    try:
        url, auth = as_script(session.open().url)
        with Polling(url.split("/?", 1)[0] + STORE, {"Range": "bytes=0-65535", **auth}) \
                as client:
            client.wait_answered("the client served before the fault")
            undo = fault()
            try:
                return served_again(client, time.monotonic(), timeout=180)
            finally:
                undo()
    finally:
        session.close()


def frozen(lab: SshLab) -> Callable[[], None]:
    pids = lab.login.freeze_sessions()
    return lambda: thaw(pids)


def outage(lab: SshLab, seconds: float) -> Callable[[], None]:
    """sshd gone for ``seconds`` (its sessions too), then back on its port."""
    lab.login.stop()
    time.sleep(seconds)
    lab.login.start()
    return lambda: None


def slept(lab: SshLab, remote: ServeProcess) -> float:
    with running_connect("login", "-F", str(lab.config), "--remote-port", str(remote.port),
                         "--no-window", "--token-file",
                         str(token_file(lab.root, remote.token))) as proc:
        with Polling(*as_script(viewer_url(proc))) as client:
            client.wait_answered("the viewer URL before sleeping")
            app_side = [proc.pid, *children(proc.pid)]
            for pid in app_side:
                os.kill(pid, signal.SIGSTOP)
            old_path = lab.login.freeze_sessions()
            time.sleep(10)
            thaw(app_side)
            try:
                return served_again(client, time.monotonic())
            finally:
                thaw(old_path)


def quit_times(runs: int, files: tuple[Path, Path]) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(prefix="reliability-bench-") as tmp, \
            app_desktop(Path(tmp)) as env:
        for _ in range(runs):
            app = App(env)
            try:
                app.wait_home_ready()
                for path in files:
                    run_cli(env, "open", str(path))
                began = time.monotonic()
                run_cli(env, "quit")
                app.proc.wait(60)
                times.append(time.monotonic() - began)
            finally:
                app.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="frozen-link and sleep runs")
    parser.add_argument("--quits", type=int, default=10)
    parser.add_argument("--outage", type=float, default=70.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the proxy's notes on each failed request meanwhile
    path = data_file()
    cache = tempfile.mkdtemp(prefix="reliability-bench-cache-")
    os.environ["XDG_CACHE_HOME"] = cache
    lab = SshLab(Path(tempfile.mkdtemp(prefix="reliability-bench-ssh-")),
                 sshd_extra=("ClientAliveInterval 1", "ClientAliveCountMax 2")).start()
    remote = cellucid_serve(path)
    node = ServeProcess([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                         "--no-browser", "--port", "0", "--host", "127.0.0.2",
                         "--dataset-id", "remote-data"])
    ours = ServeProcess([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                         "--no-browser", "--port", "0", "--dataset-id", "remote-data"])
    rows: list[Row] = []
    try:
        def login(server: ServeProcess, **more: object) -> TunnelSpec:
            return TunnelSpec("login", server.port, config_file=str(lab.config), **more)

        for label, server, spec, chunk, direct in (
                ("kill: proxy (no-UI cellucid, port taken here)", remote, login(remote),
                 1 << 16, False),
                ("kill: direct, request in flight (8 MiB ranges)", node,
                 login(node, node="127.0.0.2"), 8 << 20, True),
                ("kill: through a jump host (proxy)", remote, login(remote, jump=("jump",)),
                 1 << 16, False)):
            restored, times = kills(spec, args.kills, chunk, direct, server.token)
            rows.append((label, f"{restored} of {args.kills}", times))
        times = [one_recovery(login(remote), lambda: frozen(lab)) for _ in range(args.runs)]
        rows.append(("frozen link (sshd session stopped) → served", f"{len(times)} of "
                     f"{args.runs}", times))
        rows.append((f"sshd down {args.outage:.0f} s → served, from its return", "1 of 1",
                     [one_recovery(login(remote), lambda: outage(lab, args.outage))]))
        times = [slept(lab, ours) for _ in range(args.runs)]
        rows.append(("connect --no-window asleep 10 s → served, from waking",
                     f"{len(times)} of {args.runs}", times))
        other = Path(cache) / "other.h5ad"
        other.write_bytes(path.read_bytes())
        times = quit_times(args.quits, (path, other))
        rows.append(("quit after open A, open B", f"{len(times)} of {args.quits}", times))
    finally:
        for server in (remote, node, ours):
            server.stop()
        lab.stop()
    print(f"\nfile: {path.name} ({path.stat().st_size / 1e6:.0f} MB), loopback sshd, "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| fault | restored | median s | max s |")
    print("|---|---|---|---|")
    for label, restored, times in rows:
        median = f"{statistics.median(times):.2f}" if times else "-"
        worst = f"{max(times):.2f}" if times else "-"
        print(f"| {label} | {restored} | {median} | {worst} |")


if __name__ == "__main__":
    main()
