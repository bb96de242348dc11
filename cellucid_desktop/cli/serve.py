"""`cellucid-desktop serve`: serve datasets headless, the way `cellucid serve` does."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import webbrowser

from cellucid_desktop.cli.interrupt import honour_ctrl_c, wait_for_ctrl_c
from cellucid_desktop.cli.output import banner, error, field_line

HELP = "serve datasets on a local port (no window), like `cellucid serve`"
DESCRIPTION = """\
Serve one or more datasets over HTTP, answering the Cellucid protocol exactly as
`cellucid serve` 0.9.5 does, plus the built-in viewer at /. Useful on a cluster node
(reach it from your laptop with `cellucid-desktop connect`) or for scripts.

A dataset is an .h5ad file, an AnnData Zarr store (a .zarr folder, Zarr format 2 or 3,
or a zipped .zarr.zip), a MuData .h5mu file (one modality: --modality, else the
expression one) or a .loom file. Stores are served as they are on disk: Zarr folders key
by key (with consolidated metadata built in memory when the store has none).

Private by default: every route but /_cellucid/health needs this server's access token,
new at every start (or read from --token-file). The printed Viewer URL carries it, so
opening that URL just works; scripts send 'Authorization: Bearer <token>'. On a shared
machine, --socket serves on a Unix socket only you can reach (127.0.0.1 is open to every
user of the machine). The server binds 127.0.0.1 by default and refuses requests whose
Host header does not name it (DNS-rebinding defence). Stop it with Ctrl+C."""

NO_TOKEN_WARNING = ("Warning: --no-token: every user of this machine who can reach the "
                    "server can read its data; use it only where you are the only user "
                    "(a container, a hosted web app reading a local server)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help=HELP, description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="DATASET",
                   help="datasets to serve: .h5ad, .h5mu, .loom, .zarr folders, .zarr.zip")
    p.add_argument("--demo", action="store_true",
                   help="serve the built-in demo dataset (generated on first use)")
    p.add_argument("--port", "-p", type=int, default=8765,
                   help="port to listen on (default 8765; 0 = any free port)")
    p.add_argument("--host", "-H", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else is reachable "
                        "from other machines)")
    p.add_argument("--socket", nargs="?", const="", metavar="PATH",
                   help="serve on a Unix socket instead of a port (mode 0600; default: a new "
                        "one in your runtime folder); prints the ssh -L line to reach it")
    access = p.add_mutually_exclusive_group()
    access.add_argument("--token-file", metavar="FILE",
                        help="read the access token from FILE (mode 0600; '-' = the first "
                             "line of standard input) instead of making a new one")
    access.add_argument("--no-token", action="store_true",
                        help="no access token: answer exactly like `cellucid serve` 0.9.5 "
                             "(anyone who reaches the port reads the data)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="HOST",
                   help="also accept this Host name on any port (repeatable), e.g. behind "
                        "a proxy or a tunnel with a different local port")
    p.add_argument("--dataset-id", help="id to publish (default: uns['cellucid'] or file name)")
    p.add_argument("--dataset-name", help="display name (default: uns['cellucid'] or file name)")
    p.add_argument("--modality", metavar="NAME",
                   help="the MuData modality to serve (default: rna, gex... else the first)")
    p.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    p.add_argument("--quiet", "-q", action="store_true", help="print nothing, not even the banner")


def run(args: argparse.Namespace) -> int:
    from cellucid_desktop.data.errors import DatasetError
    from cellucid_desktop.server.access import NEW_TOKEN, read_token_file, url_with_token
    from cellucid_desktop.data.source import FORMAT_LABELS
    from cellucid_desktop.logs import log_to_terminal
    from cellucid_desktop.server.registry import DatasetRegistry
    from cellucid_desktop.server.runner import ServerThread
    from cellucid_desktop.hosts import is_loopback_name
    from cellucid_desktop.server.sockets import check_socket_path, forward_command

    honour_ctrl_c()
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    if args.quiet:
        logging.getLogger().addHandler(logging.NullHandler())  # not even a warning
    else:
        log_to_terminal()
    if not 0 <= args.port <= 65535:
        return error(f"--port must be between 0 and 65535, not {args.port}")
    try:
        token = None if args.no_token else \
            read_token_file(args.token_file) if args.token_file else NEW_TOKEN
        socket_path = None if args.socket is None else check_socket_path(args.socket or None)
    except (ValueError, OSError) as exc:
        return error(str(exc))
    paths = list(args.files)
    if args.demo:
        from cellucid_desktop.data.demo import demo_path
        say("Preparing the demo dataset...")
        paths.insert(0, str(demo_path()))
    if not paths:
        return error("give a dataset to serve (.h5ad, .h5mu, .loom, .zarr), or --demo for "
                     "the built-in demo dataset")
    if (args.dataset_id or args.dataset_name) and len(paths) > 1:
        return error("--dataset-id and --dataset-name apply to a single file")

    registry = DatasetRegistry()
    for path in paths:
        try:
            dataset = registry.add(path, dataset_id=args.dataset_id, name=args.dataset_name,
                                   modality=args.modality)
        except DatasetError as exc:
            return error(str(exc))
        meta = dataset.meta
        say(field_line("Dataset", f"{dataset.name} ({dataset.id}, "
                       f"{FORMAT_LABELS.get(dataset.source.kind, dataset.source.kind)}): "
                       f"{meta.n_cells:,} cells, {meta.n_genes:,} genes, "
                       f"embeddings: {', '.join(meta.obsm) or 'none'}"))
    if not args.quiet:
        if args.no_token:
            print(NO_TOKEN_WARNING, file=sys.stderr)
        if socket_path is None and not is_loopback_name(args.host):
            print(f"Warning: binding {args.host} makes the data reachable from other "
                  "machines; prefer the default 127.0.0.1 with an SSH tunnel", file=sys.stderr)
    try:
        server = ServerThread(registry, host=args.host, port=args.port, token=token,
                              allowed_hosts=args.allowed_host,
                              socket_path=str(socket_path) if socket_path else None).start()
    except ValueError as exc:  # a bad --allowed-host
        return error(str(exc))
    except OSError as exc:
        return error(exc.strerror or str(exc))
    first = registry.all()[0]
    if socket_path is not None:
        local = "http://127.0.0.1:8765"
        lines = [("Socket", str(socket_path)), ("Forward", forward_command(socket_path)),
                 ("Connect", f"cellucid-desktop connect HOST --remote-socket {socket_path}"),
                 ("Viewer URL", url_with_token(f"{local}/?dataset={first.id}", server.token))]
        notes = ["Run the Forward line on your laptop, then open the Viewer URL there."]
    else:
        lines = [("Local URL", server.url),
                 ("Viewer URL", server.url_with_token(f"/?dataset={first.id}"))]
        notes = []
    say(banner("CELLUCID SERVER RUNNING", lines, notes))
    if not args.no_browser and socket_path is None:
        viewer_url = lines[-1][1]
        threading.Thread(target=webbrowser.open, args=(viewer_url,), daemon=True).start()
    try:
        wait_for_ctrl_c()
    except KeyboardInterrupt:
        say("\nStopping...")
    finally:
        server.stop()
    return 130
