"""`cellucid-desktop connect`: view a remote Cellucid server through an SSH tunnel."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from typing import TYPE_CHECKING

from cellucid_desktop.cli.interrupt import SLICE, honour_ctrl_c, wait_for_ctrl_c
from cellucid_desktop.cli.output import banner, error

if TYPE_CHECKING:
    from cellucid_desktop.remote.session import RemoteSession
    from cellucid_desktop.remote.tunnel import TunnelStatus

APP_START_TIMEOUT = 60.0
HELP = "view a remote Cellucid server: build and watch the SSH tunnel, or use a forwarded port"
DESCRIPTION = """\
Connect to a `cellucid serve` (or `cellucid-desktop serve`) running on another machine.

  cellucid-desktop connect 8765             a port you already forwarded yourself
  cellucid-desktop connect user@cluster     run `ssh -N -L` and watch it (reconnects)
  cellucid-desktop connect login --node c042 --remote-port 9000   server on a compute node

ssh runs with BatchMode (no password prompts): use a key or ssh-agent, or log in once in
a terminal with the command --print-command shows. The forward binds 127.0.0.1 only.
Without --no-window the connection is handed to Cellucid Desktop (started if it is not
running), which runs the tunnel and shows the viewer in a window; this command returns
once the window opens. With --no-window this command keeps the tunnel up itself, prints
the viewer URL, and stops the tunnel on Ctrl+C."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("connect", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="TARGET|PORT",
                   help="user@host or ~/.ssh/config alias, or a local port already forwarded")
    p.add_argument("--jump", "-J", action="append", default=[], metavar="HOST",
                   help="jump host(s), as ssh -J (repeatable)")
    p.add_argument("--node", help="the server runs on this compute node, reached from TARGET")
    p.add_argument("--remote-port", type=int,
                   help="port of the server on the remote side (default 8765; for a "
                        "forwarded PORT, only needed if it differs and is not a usual one)")
    p.add_argument("--local-port", type=int,
                   help="local end of the tunnel (default: the remote port if free)")
    p.add_argument("--ssh-port", type=int, help="SSH port of TARGET (ssh -p)")
    p.add_argument("-i", dest="identity", metavar="KEY", help="identity file (ssh -i)")
    p.add_argument("-o", dest="options", action="append", default=[], metavar="Key=Value",
                   help="extra ssh option from a safe list (repeatable)")
    p.add_argument("-F", dest="config", metavar="FILE", help="ssh config file (ssh -F)")
    p.add_argument("--print-command", action="store_true",
                   help="print the ssh command and the remote server command, then exit")
    p.add_argument("--no-window", action="store_true",
                   help="keep the tunnel up here and print the viewer URL; no window")


def run(args: argparse.Namespace) -> int:
    from cellucid_desktop.remote.ports import choose_local_port
    from cellucid_desktop.remote.session import RemoteError, RemoteSession
    from cellucid_desktop.remote.ssh_command import (DEFAULT_REMOTE_PORT, SpecError,
                                                     TunnelSpec, display_command,
                                                     server_command)

    if args.target.isdigit():
        port = int(args.target)
        if not 1 <= port <= 65535:
            return error(f"port must be between 1 and 65535, not {port}")
        if not args.no_window:
            return _open_in_app({"mode": "forwarded", "forwarded_port": str(port),
                                 "remote_port": str(args.remote_port or "")})
        session = RemoteSession(port=port, remote_port=args.remote_port)
        what = f"127.0.0.1:{port}"
    else:
        spec = TunnelSpec(args.target, remote_port=args.remote_port or DEFAULT_REMOTE_PORT,
                          local_port=args.local_port, jump=tuple(args.jump), node=args.node,
                          ssh_port=args.ssh_port, identity_file=args.identity,
                          options=tuple(args.options), config_file=args.config)
        try:
            spec = spec.validated()
        except SpecError as exc:
            return error(str(exc))
        if args.print_command:
            local = choose_local_port(spec.remote_port, spec.local_port)
            print(f"  Tunnel:       {display_command(spec, local)}")
            print(f"  On remote:    {server_command('data.h5ad', spec.remote_port)}")
            return 0
        if not args.no_window:
            from cellucid_desktop.remote.connections import form_from_spec
            return _open_in_app(form_from_spec(spec))
        session = RemoteSession(spec, on_status=_print_status)
        what = spec.target
    from cellucid_desktop.logs import setup_logging

    honour_ctrl_c()
    setup_logging()  # the proxy's and tunnel's own notes go to the log, not this terminal
    try:
        view = session.open()
    except RemoteError as exc:
        return error(str(exc))
    lines = [("Remote", f"{what} ({view.probe.message})"), ("Viewer URL", view.url)]
    if session.tunnel is not None:
        lines.insert(1, ("Tunnel", session.tunnel.command))
    print(banner("CELLUCID REMOTE CONNECTED", lines,
                 [] if view.direct else ["Shown through a local proxy (see docs/remote.md)."]),
          flush=True)
    try:
        return _wait(session)
    finally:
        session.close()


def _wait(session: RemoteSession) -> int:
    """Until Ctrl+C (KeyboardInterrupt -> exit 130), or the tunnel gives up."""
    from cellucid_desktop.remote.tunnel import TunnelState

    if session.tunnel is None:
        wait_for_ctrl_c()
    ended = {TunnelState.FAILED, TunnelState.STOPPED}
    while (status := session.tunnel.wait_until(ended, SLICE)).state not in ended:
        pass  # short waits: Ctrl+C does not interrupt a long one on Windows
    return error(status.message)


def _open_in_app(form: dict[str, str]) -> int:
    """Hand the connection to the running app (starting it first), then follow it until
    its window opens or it fails."""
    from cellucid_desktop.desktop.instance import find_running
    from cellucid_desktop.integration import launch_command

    app = find_running()
    if app is None:
        subprocess.Popen(launch_command(), start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + APP_START_TIMEOUT
        while app is None and time.monotonic() < deadline:
            time.sleep(0.3)
            app = find_running()
        if app is None:
            return error("Cellucid Desktop did not start; run it once to see why, or use "
                         "--no-window")
    try:
        started = app.call("connect", {"form": form})
        if not started.get("ok"):
            return error(started.get("error", "the app refused the connection"))
        shown = ""
        while True:
            status = app.call("connect", {"id": started["id"]})
            if status["message"] != shown and status["state"] != "connected":
                shown = status["message"]
                print(f"  [{status['state']}] {shown}", file=sys.stderr, flush=True)
            if status["state"] == "connected":
                print(f"  Opened in Cellucid Desktop: {status['url']}", flush=True)
                return 0
            if status["state"] in ("failed", "stopped"):
                return error(status["message"] or "the connection was closed")
            time.sleep(0.5)
    except OSError as exc:
        return error(f"Cellucid Desktop stopped answering ({exc}); use --no-window")


def _print_status(status: TunnelStatus) -> None:
    """Progress on stderr, so stdout carries only the banner scripts parse."""
    if status.state.value != "connected":
        print(f"  [{status.state.value}] {status.message}", file=sys.stderr, flush=True)
