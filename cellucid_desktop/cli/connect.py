"""`cellucid-desktop connect`: view a remote Cellucid server through an SSH tunnel."""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from cellucid_desktop.cli.interrupt import SLICE, honour_ctrl_c, wait_for_ctrl_c
from cellucid_desktop.cli.output import banner, error

if TYPE_CHECKING:
    from cellucid_desktop.desktop.instance import Instance
    from cellucid_desktop.remote.master import MasterPool
    from cellucid_desktop.remote.session import RemoteSession
    from cellucid_desktop.remote.tunnel import TunnelStatus

APP_START_TIMEOUT = 60.0
HELP = "view a remote Cellucid server: build and watch the SSH tunnel, or use a forwarded port"
DESCRIPTION = """\
Connect to a `cellucid serve` (or `cellucid-desktop serve`) running on another machine.

  cellucid-desktop connect 8765             a port you already forwarded yourself
  cellucid-desktop connect user@cluster     run `ssh -N -L` and watch it (reconnects)
  cellucid-desktop connect login --node c042 --remote-port 9000   server on a compute node

  cellucid-desktop connect login --remote-socket /run/user/1000/cellucid-desktop/serve-1a2b.sock
                                            a `cellucid-desktop serve --socket` (its banner
                                            prints the path)

Or let it start the server there and open a file (no terminal on the cluster needed):

  cellucid-desktop connect login --open /data/pbmc.h5ad --env "module load python"
  cellucid-desktop connect login --open ~/atlas.zarr --slurm --partition debug --time 1:00:00

  --open signs in (asking here for passwords, one-time codes and unknown host keys, once
  for the whole session), runs --env in your login shell, starts `cellucid-desktop serve`
  (preferred: a private socket and a token) or `cellucid serve` detached, tunnels to it
  and opens it. With --slurm the server runs in a batch job; the queue state is shown
  while it waits. Ctrl+C (or closing the window) stops the server too, unless
  --keep-running; a kept server is listed in the app's recent remote files to reattach.
  The environment line, program and Slurm options are remembered per host.

Sign-in prompts are asked on this terminal. The forward binds 127.0.0.1 only.

A `cellucid-desktop serve` wants its access token (its Viewer URL ends in ?token=...):
give it with --token-file FILE (or '-' for standard input), or paste it (or the whole
Viewer URL) when asked. A `cellucid serve` has no token and needs none.
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
    p.add_argument("--remote-socket", metavar="PATH",
                   help="the server listens on this Unix socket on TARGET (serve --socket)")
    p.add_argument("--token-file", metavar="FILE",
                   help="the remote server's access token, read from FILE ('-' = standard "
                        "input); asked for when needed and not given")
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
    launch = p.add_argument_group("start the server on TARGET and open a file")
    launch.add_argument("--open", metavar="REMOTE_PATH",
                        help="the dataset on TARGET to open (.h5ad, .zarr, .zarr.zip, .h5mu, "
                             ".loom); starts its server there")
    launch.add_argument("--env", metavar="LINE",
                        help="shell line run in your login shell before the server, e.g. "
                             "'module load python; source ~/venv/bin/activate' (remembered "
                             "per host; '' clears it)")
    launch.add_argument("--program", choices=("auto", "cellucid-desktop", "cellucid"),
                        help="server program (default: remembered, else auto = "
                             "cellucid-desktop if installed, else cellucid)")
    launch.add_argument("--keep-running", action="store_true",
                        help="leave the server running when this ends (reattach later)")
    launch.add_argument("--slurm", action="store_true",
                        help="run the server in a Slurm job (sbatch) instead of on TARGET")
    launch.add_argument("--partition", help="Slurm partition (remembered per host)")
    launch.add_argument("--time", help="Slurm time limit, e.g. 1:00:00 (remembered)")
    launch.add_argument("--mem", help="Slurm memory, e.g. 16G (remembered)")
    launch.add_argument("--account", help="Slurm account (remembered)")
    launch.add_argument("--sbatch-arg", action="append", metavar="OPTION",
                        help="extra sbatch option from a safe list, written with '=': "
                             "--sbatch-arg=--gres=gpu:1 (repeatable; remembered)")


def run(args: argparse.Namespace) -> int:
    from cellucid_desktop.remote.ports import choose_local_port
    from cellucid_desktop.cli.terminal_prompts import terminal_pool
    from cellucid_desktop.remote.session import RemoteSession
    from cellucid_desktop.remote.ssh_command import (DEFAULT_REMOTE_PORT, SpecError,
                                                     TunnelSpec, display_command,
                                                     server_command)
    from cellucid_desktop.server.access import read_token_file

    pools: list[MasterPool] = []
    try:
        token = read_token_file(args.token_file) if args.token_file else None
    except ValueError as exc:
        return error(str(exc))
    if args.target.isdigit():
        port = int(args.target)
        if not 1 <= port <= 65535:
            return error(f"port must be between 1 and 65535, not {port}")
        form = {"mode": "forwarded", "forwarded_port": str(port),
                "remote_port": str(args.remote_port or "")}

        def new_session(token: str | None) -> RemoteSession:
            return RemoteSession(port=port, remote_port=args.remote_port, token=token)
        what = f"127.0.0.1:{port}"
    else:
        spec = TunnelSpec(args.target, remote_port=args.remote_port or DEFAULT_REMOTE_PORT,
                          local_port=args.local_port, jump=tuple(args.jump), node=args.node,
                          ssh_port=args.ssh_port, identity_file=args.identity,
                          options=tuple(args.options), config_file=args.config,
                          remote_socket=args.remote_socket)
        try:
            spec = spec.validated()
        except SpecError as exc:
            return error(str(exc))
        if args.print_command:
            local = choose_local_port(spec.remote_port, spec.local_port)
            program = "cellucid-desktop" if spec.remote_socket else "cellucid"
            print(f"  Tunnel:       {display_command(spec, local)}")
            remote = server_command("data.h5ad", spec.remote_port, program=program,
                                    socket=spec.remote_socket)
            print(f"  On remote:    {remote}")
            return 0
        if args.open is not None:
            from cellucid_desktop.cli.connect_open import run_open

            return run_open(args, spec)
        from cellucid_desktop.remote.connections import form_from_spec
        form = form_from_spec(spec)

        def new_session(token: str | None) -> RemoteSession:
            if not pools:  # sign-in prompts (password, code, host key) on this terminal
                pools.append(terminal_pool())
            return RemoteSession(spec, masters=pools[0], on_status=_print_status,
                                 token=token)
        what = spec.target
    if not args.no_window:
        return _open_in_app({"form": form}, token)
    try:
        return _run_here(new_session, token, what)
    finally:
        for pool in pools:
            pool.close_all()
            pool.broker.close()


def _run_here(new_session: Callable[[str | None], RemoteSession], token: str | None,
              what: str) -> int:
    """Connect here, print the banner, keep the tunnel up until Ctrl+C or its end."""
    from cellucid_desktop.logs import setup_logging
    from cellucid_desktop.remote.session import RemoteError, TokenNeeded

    honour_ctrl_c()
    setup_logging()  # the proxy's and tunnel's own notes go to the log, not this terminal
    while True:
        session = new_session(token)
        try:
            view = session.open()
            break
        except TokenNeeded as exc:
            token = _ask_token(str(exc))
            if token is None:
                return error(str(exc))
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


def _ask_token(problem: str) -> str | None:
    """Ask for the remote's access token on the terminal (hidden, as a password); None
    when there is no terminal to ask on or nothing was typed."""
    from cellucid_desktop.server.access import token_from_text

    if not sys.stdin.isatty():
        return None
    print(problem, file=sys.stderr, flush=True)
    while True:
        try:
            return token_from_text(getpass.getpass("Access token or Viewer URL: "))
        except ValueError as exc:
            print(exc, file=sys.stderr, flush=True)
        except EOFError:
            return None


def _wait(session: RemoteSession) -> int:
    """Until Ctrl+C (KeyboardInterrupt -> exit 130), or the tunnel gives up."""
    from cellucid_desktop.remote.tunnel import TunnelState

    if session.tunnel is None:
        wait_for_ctrl_c()
    ended = {TunnelState.FAILED, TunnelState.STOPPED}
    while (status := session.tunnel.wait_until(ended, SLICE)).state not in ended:
        pass  # short waits: Ctrl+C does not interrupt a long one on Windows
    return error(status.message)


def _open_in_app(request: dict, token: str | None) -> int:
    """Hand the connection (``{"form": ...}``, or ``{"plan": ...}`` to start the server
    too) to the running app (starting it first), then follow it until its window opens
    or it fails (asking for the remote's token if it wants one)."""
    from cellucid_desktop.desktop.instance import InstanceError, find_running
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
        while True:
            if "form" in request:
                request = {"form": {**request["form"], "token": token or ""}}
            status = _follow(app, request)
            if status["state"] == "connected":
                print(f"  Opened in Cellucid Desktop: {status['url']}", flush=True)
                return 0
            if status.get("needs_token"):
                token = _ask_token(status["message"])
                if token is not None:
                    continue
            return error(status["message"] or "the connection was closed")
    except OSError as exc:
        return error(f"Cellucid Desktop stopped answering ({exc}); use --no-window")
    except InstanceError as exc:
        return error(str(exc))


def _follow(app: Instance, request: dict) -> dict:
    """Start the connection in the app and print its progress until it connects or
    fails; the last status (``state``, ``message``, ``needs_token``)."""
    started = app.call("connect", request)
    if not started.get("ok"):
        return {"state": "failed", "message": started.get("error", "the app refused the "
                                                                    "connection")}
    shown = ""
    while True:
        status = app.call("connect", {"id": started["id"]})
        if status["message"] != shown and status["state"] != "connected":
            shown = status["message"]
            print(f"  [{status['state']}] {shown}", file=sys.stderr, flush=True)
        if status["state"] in ("connected", "failed", "server-stopped", "stopped"):
            return status
        time.sleep(0.5)


def _print_status(status: TunnelStatus) -> None:
    """Progress on stderr, so stdout carries only the banner scripts parse."""
    if status.state.value != "connected":
        print(f"  [{status.state.value}] {status.message}", file=sys.stderr, flush=True)
