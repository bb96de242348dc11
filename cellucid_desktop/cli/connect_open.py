"""`cellucid-desktop connect TARGET --open PATH`: start the server there and open a file.

With --no-window this command does it all itself (``RemoteOpen``, prompts on this
terminal through ``TerminalPrompts``) and prints the ``Viewer URL:`` line; without, it
hands the plan to the running app (which asks in its own prompt window) and follows it.
The environment line, program and Slurm options given are remembered per host; those
not given come from what the host remembers.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
from typing import TYPE_CHECKING

from cellucid_desktop.cli.interrupt import SLICE, honour_ctrl_c
from cellucid_desktop.cli.output import banner, error

if TYPE_CHECKING:
    from cellucid_desktop.remote.connections import ConnectionStore
    from cellucid_desktop.remote.master import MasterPool
    from cellucid_desktop.remote.opening import LaunchPlan, OpenStatus, RemoteOpen
    from cellucid_desktop.remote.ssh_command import TunnelSpec

ENDED = ("failed", "server-stopped", "stopped")


def run_open(args: argparse.Namespace, spec: TunnelSpec) -> int:
    from cellucid_desktop.remote.connections import ConnectionStore
    from cellucid_desktop.remote.ssh_command import SpecError

    if spec.node or spec.remote_socket:
        return error("--open starts the server itself: leave out --node and --remote-socket "
                     "(use --slurm for a compute node)")
    store = ConnectionStore()
    try:
        plan = plan_from_args(args, spec, store)
    except SpecError as exc:
        return error(str(exc))
    if not args.no_window:
        from cellucid_desktop.cli.connect import _open_in_app

        return _open_in_app({"plan": plan.to_json()}, None)
    return _run_here(plan, store)


def plan_from_args(args: argparse.Namespace, spec: TunnelSpec,
                   store: ConnectionStore) -> LaunchPlan:
    """The plan from the flags, with what ``spec``'s host remembers for the rest; the
    choices are remembered (SpecError with a sentence if one is not valid)."""
    from dataclasses import replace

    from cellucid_desktop.remote.opening import LaunchPlan

    host = spec.host
    memory = store.host_memory(host)
    slurm = memory.slurm
    changes = {name: value for name in ("partition", "time", "mem", "account")
               if (value := getattr(args, name)) is not None}
    if changes:
        slurm = replace(slurm, **changes)
    if args.sbatch_arg is not None:
        slurm = replace(slurm, extra=tuple(args.sbatch_arg))
    where = "slurm" if args.slurm else "host"
    plan = LaunchPlan(spec, args.open, where=where,
                      env=memory.env if args.env is None else args.env,
                      program=args.program or memory.program,
                      slurm=slurm if where == "slurm" else None,
                      keep_running=args.keep_running).validated()
    store.remember_host(host, env=plan.env, program=plan.program, where=where,
                        slurm=plan.slurm)
    return plan


def _run_here(plan: LaunchPlan, store: ConnectionStore) -> int:
    """Open with prompts on this terminal (reattaching to the server kept running for
    this host and path, if any); wait for Ctrl+C or the end; stop the server unless
    --keep-running."""
    from cellucid_desktop.cli.terminal_prompts import terminal_pool
    from cellucid_desktop.logs import setup_logging
    from cellucid_desktop.remote.opening import RemoteError, RemoteOpen

    honour_ctrl_c()
    setup_logging()
    pool = terminal_pool()
    opening = _kept(plan, store, pool)
    try:
        if opening is not None:
            try:
                return _open_and_wait(opening, plan, store)
            except RemoteError as exc:  # the kept server is gone: start a new one
                store.forget_record(plan.tunnel.host, opening.plan.path)
                print(f"  {exc} Starting a new one.", file=sys.stderr, flush=True)
        opening = RemoteOpen(plan, masters=pool, on_status=_print_status)
        try:
            return _open_and_wait(opening, plan, store)
        except RemoteError as exc:
            for line in getattr(exc, "detail", {}).get("log_tail", [])[-10:]:
                print(f"  | {line}", file=sys.stderr)
            return error(str(exc))
    finally:
        if opening is not None:
            opening.close(stop_server=not plan.keep_running)
            if not plan.keep_running and opening.started is not None:
                store.forget_record(plan.tunnel.host, opening.started.path)
        pool.close_all()
        pool.broker.close()


def _kept(plan: LaunchPlan, store: ConnectionStore, pool: MasterPool) -> RemoteOpen | None:
    """A RemoteOpen reattaching to the server kept running for this host, path and
    place (None: there is none, or its record no longer reads)."""
    from cellucid_desktop.remote.opening import RemoteOpen
    from cellucid_desktop.remote.ssh_command import SpecError

    for file in store.recent_files(plan.tunnel.host):
        if file.record and file.path == plan.path and file.where == plan.where:
            try:
                opening = RemoteOpen.reattach(file.record, masters=pool,
                                              on_status=_print_status)
            except SpecError:
                store.forget_record(plan.tunnel.host, file.path)
                return None
            print(f"  Reattaching to the server kept running for {file.path}.",
                  file=sys.stderr, flush=True)
            return opening
    return None


def _open_and_wait(opening: RemoteOpen, plan: LaunchPlan, store: ConnectionStore) -> int:
    """Open (RemoteError if it fails), remember the file (with its record if kept),
    print the banner, wait."""
    from cellucid_desktop.remote.connections import RemoteFile

    view = opening.open()
    started = opening.started
    store.note_file(RemoteFile(plan.tunnel.host, started.path, plan.where,
                               record=opening.record if plan.keep_running else None))
    store.note_folder(plan.tunnel.host, posixpath.dirname(started.path.rstrip("/")) or "/")
    lines = [("Remote", f"{plan.tunnel.target}: {started.path}"),
             ("Server", f"{started.program} ("
              + (f"Slurm job {started.job} on {started.node}" if started.job
                 else f"PID {started.pid}") + ")"),
             ("Log", started.log),
             ("Viewer URL", view.url)]
    notes = ["The server keeps running after Ctrl+C (--keep-running)."
             if plan.keep_running else "Ctrl+C stops the server too."]
    if "warning" in opening.status.detail:
        notes.append(opening.status.detail["warning"])
    print(banner("CELLUCID REMOTE CONNECTED", lines, notes), flush=True)
    return _wait(opening)


def _wait(opening: RemoteOpen) -> int:
    """Until Ctrl+C (exit 130 through KeyboardInterrupt) or the opening ends."""
    import time

    while opening.status.phase not in ENDED:
        time.sleep(SLICE)
    for line in opening.status.detail.get("log_tail", [])[-10:]:
        print(f"  | {line}", file=sys.stderr)
    return error(opening.status.message)


def _print_status(status: OpenStatus) -> None:
    """Progress on stderr (stdout carries only the banner scripts parse)."""
    if status.phase not in ("connected", "stopped", "failed", "server-stopped"):
        print(f"  [{status.phase}] {status.message}", file=sys.stderr, flush=True)
