"""Remote viewing over a real loopback SSH tunnel: time to data, and gene recolouring.

One run, one file (the 100k-cell, 20k-gene CSR file of gene_vectors.py), two remotes
behind one sshd on 127.0.0.1, each reached with the app's own Tunnel/RemoteSession:

* ``cellucid-desktop serve`` (ours): the data API computes a gene on the remote and
  sends one vector;
* ``cellucid serve`` 0.9.5 ``--no-web-ui``: only the raw store; a gene costs either what
  a browser must move for CSR X (indptr + indices + data, fetched here as byte ranges
  through the tunnel), or what our local proxy reads through RangeFile to answer the
  built-in viewer's data API.

Rows: Start tunnel -> health answers; session open (tunnel + probe + datasets + proxy);
first data (dataset description + default embedding); the built-in viewer `ready` in
headless Chromium (from Start, fresh session); first gene; 10 more genes.

Usage: .venv/bin/python benchmarks/remote.py [--size 100k]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

from benchmarks.gene_vectors import N_GENES, dataset_file  # noqa: E402
from benchmarks.viewer_load import load_once  # noqa: E402

from cellucid_desktop.remote.ports import any_free_port  # noqa: E402
from cellucid_desktop.remote.session import RemoteSession  # noqa: E402
from cellucid_desktop.remote.ssh_command import TunnelSpec  # noqa: E402
from cellucid_desktop.remote.tunnel import Tunnel, TunnelState  # noqa: E402
from tests.remote.servers import cellucid_serve, desktop_serve  # noqa: E402
from tests.remote.sshd import SshLab  # noqa: E402
from tests.viewer.browser import launch_chromium  # noqa: E402

DATASET = "remote-data"


def get(port: int, path: str, host_port: int, headers: dict | None = None,
        token: str | None = None) -> tuple[int, dict[str, str], bytes, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{host_port}", **auth,
                                       **(headers or {})})
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return resp.status, dict(resp.getheaders()), body, elapsed


def csr_extents(path: Path) -> list[tuple[int, int]]:
    """Byte ranges holding X/indptr, X/indices and X/data (every chunk), adjacent ones
    merged: what a browser reading one CSR gene must download."""
    pieces = []
    with h5py.File(path, "r") as h5:
        for key in ("indptr", "indices", "data"):
            ds = h5[f"X/{key}"]
            if ds.chunks is None:
                pieces.append((ds.id.get_offset(), ds.id.get_storage_size()))
                continue
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                pieces.append((info.byte_offset, info.size))
    merged: list[list[int]] = []
    for offset, size in sorted(pieces):
        if merged and merged[-1][0] + merged[-1][1] == offset:
            merged[-1][1] += size
        else:
            merged.append([offset, size])
    return [(offset, size) for offset, size in merged]


def time_tunnel(spec: TunnelSpec) -> float:
    tunnel = Tunnel(spec, any_free_port())
    start = time.perf_counter()
    status = tunnel.start().wait_connected(120)
    elapsed = time.perf_counter() - start
    tunnel.stop()
    assert status.state == TunnelState.CONNECTED, status.message
    return elapsed


def api_genes(port: int, host_port: int, genes: list[str], gzip: bool, token: str | None,
              ) -> list[tuple[float, int, int]]:
    """(seconds, bytes over the tunnel, bytes the remote file gave) per gene."""
    out = []
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    for gene in genes:
        status, answer, body, elapsed = get(port, f"/api/v1/datasets/{DATASET}/genes/{gene}",
                                            host_port, headers, token)
        assert status == 200, (status, body[:200])
        out.append((elapsed, len(body), int(answer.get("X-Remote-Bytes", 0))))
    return out


def open_session(spec: TunnelSpec, browser: Browser, token: str | None,
                 ) -> tuple[RemoteSession, float, float, float]:
    """Times from Start: session open; the viewer's first data (dataset + embedding);
    the built-in viewer `ready` in headless Chromium (a second, fresh session)."""
    session = RemoteSession(spec, token=token)
    start = time.perf_counter()
    view = session.open()
    opened = time.perf_counter() - start
    base_port = int(view.url.split(":")[2].split("/")[0])
    page_token = view.url.split("token=")[1] if "token=" in view.url else None
    _, _, doc, t1 = get(base_port, f"/api/v1/datasets/{DATASET}", base_port, token=page_token)
    embedding = json.loads(doc)["default_embedding"]
    _, _, _, t2 = get(base_port, f"/api/v1/datasets/{DATASET}/embeddings/{embedding}",
                      base_port, token=page_token)
    session.close()
    session = RemoteSession(spec, token=token)
    start = time.perf_counter()
    view = session.open()
    loaded, (context, _page) = load_once(browser, view.url)
    ready = time.perf_counter() - start
    context.close()
    return session, opened, opened + t1 + t2, ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="100k")
    args = parser.parse_args()
    path = dataset_file(args.size)
    cache = tempfile.mkdtemp(prefix="remote-bench-", dir=path.parent)
    os.environ["XDG_CACHE_HOME"] = cache  # gene indexes built here are deleted at the end
    rng = random.Random(3)
    genes = [f"GENE{rng.randrange(N_GENES):05d}" for _ in range(11)]
    ssh_root = tempfile.mkdtemp(prefix="remote-bench-ssh-")
    lab = SshLab(Path(ssh_root)).start()
    ours = desktop_serve(path)
    theirs = cellucid_serve(path)
    rows: list[tuple[str, str, str, str]] = []
    playwright = sync_playwright().start()
    browser = launch_chromium(playwright)
    try:
        for label, remote in (("ours", ours), ("cellucid 0.9.5", theirs)):
            spec = TunnelSpec("login", remote.port, config_file=str(lab.config))
            rows.append((label, "Start tunnel -> health answers", f"{time_tunnel(spec):.3f}",
                         ""))
            session, opened, first_data, ready = open_session(spec, browser, remote.token)
            rows.append((label, "session open (tunnel+probe+datasets+proxy)",
                         f"{opened:.3f}", ""))
            rows.append((label, "first data (dataset + embedding)", f"{first_data:.3f}", ""))
            rows.append((label, "viewer ready in headless Chromium", f"{ready:.3f}", ""))
            tunnel_port = session.local_port
            if label == "ours":
                first = api_genes(tunnel_port, remote.port, genes[:1], True, remote.token)[0]
                rest = api_genes(tunnel_port, remote.port, genes[1:], True, remote.token)
                rows.append((label, "gene 1 via remote data API (gzip)", f"{first[0]:.3f}",
                             f"{first[1]:,}"))
                rows.append((label, "genes 2-11 via remote data API, mean",
                             f"{sum(r[0] for r in rest) / len(rest):.3f}",
                             f"{sum(r[1] for r in rest) // len(rest):,}"))
            else:
                proxy = session.proxy
                proxy_port = int(proxy.url.rsplit(":", 1)[1])
                proxy_token = proxy.server.token
                first = api_genes(proxy_port, proxy_port, genes[:1], False, proxy_token)[0]
                rest = api_genes(proxy_port, proxy_port, genes[1:], False, proxy_token)
                rows.append((label, "gene 1 via local proxy + RangeFile", f"{first[0]:.3f}",
                             f"{first[2]:,} read"))
                rows.append((label, "genes 2-11 via proxy + RangeFile, mean",
                             f"{sum(r[0] for r in rest) / len(rest):.3f}",
                             f"{sum(r[2] for r in rest) // len(rest):,} read"))
                moved, start = 0, time.perf_counter()
                for offset, size in csr_extents(path):
                    _, _, body, _ = get(tunnel_port, f"/_cellucid/anndata/{DATASET}.h5ad",
                                        remote.port,
                                        {"Range": f"bytes={offset}-{offset + size - 1}"})
                    moved += len(body)
                rows.append((label, "browser's CSR gene: indptr+indices+data",
                             f"{time.perf_counter() - start:.3f}", f"{moved:,}"))
            session.close()
    finally:
        browser.close()
        playwright.stop()
        ours.stop()
        theirs.stop()
        lab.stop()
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(ssh_root, ignore_errors=True)
    print(f"\nfile: {path.name} ({path.stat().st_size / 1e6:.0f} MB), loopback sshd\n")
    print(f"| {'remote':<15}| {'step':<45}| {'seconds':>8} | {'bytes':>16} |")
    print(f"|{'-' * 16}|{'-' * 46}|{'-' * 10}|{'-' * 18}|")
    for remote, step, seconds, size in rows:
        print(f"| {remote:<15}| {step:<45}| {seconds:>8} | {size:>16} |")


if __name__ == "__main__":
    main()
