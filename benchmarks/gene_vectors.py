"""Gene vectors through the data API: first gene by scan, index build, indexed genes.

For synthetic CSR files of 100k and 1M cells (20k genes, ~311 stored values per cell),
served by `cellucid-desktop serve` in a child process with a fresh cache folder:

* first gene before the index exists (page cache warm): server time (Server-Timing)
  and end to end over HTTP;
* index build: wall time from the first gene request to "ready", and the server's peak
  memory while building (private = RssAnon; file-backed pages of the output maps are
  page cache the kernel writes back and reclaims);
* after the index: 50 random genes, server p50/p95 and end-to-end p50/p95, raw and
  gzipped (as a browser asks);
* the server's RSS afterwards;
* the anchor: the bytes a browser moves through `cellucid serve` 0.9.5 to read one
  gene of the same file (X/indptr + X/indices + X/data, read whole by the web app).

Usage: .venv/bin/python benchmarks/gene_vectors.py [--sizes 100k,1m]
The files are generated once under benchmarks/data/ (1M takes about a minute).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (BENCH_AUTH, DATA, proc_status_kb, synthetic_file,  # noqa: E402
                                token_file, warm_page_cache)
from tests.helpers import free_port, wait_for  # noqa: E402

SIZES = {"100k": 100_000, "1m": 1_000_000}
N_GENES, PER_CELL = 20_000, 311


def dataset_file(label: str) -> Path:
    return synthetic_file(f"genes-{label}.h5ad", SIZES[label], N_GENES,
                          genes_per_cell=PER_CELL, seed=0)


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def get(self, path: str, gzip: bool = False) -> tuple[int, dict, bytes, float]:
        headers = {**BENCH_AUTH, **({"Accept-Encoding": "gzip"} if gzip else {})}
        start = time.perf_counter()
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        return response.status, dict(response.getheaders()), body, elapsed


def server_ms(headers: dict) -> float:
    return float(headers["Server-Timing"].split("dur=")[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(label: str) -> dict[str, str]:
    path = dataset_file(label)
    with h5py.File(path, "r") as h5:
        anchor = sum(h5[f"X/{k}"].size * h5[f"X/{k}"].dtype.itemsize
                     for k in ("indptr", "indices", "data"))
        nnz = h5["X/data"].size
    warm_page_cache(path)
    cache = Path(tempfile.mkdtemp(prefix="gene-bench-cache-", dir=DATA))
    port = free_port()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                             "--port", str(port), "--no-browser", "--quiet",
                             "--dataset-id", "bench", "--token-file", str(token_file(cache))],
                            env=env, cwd=ROOT)
    try:
        client = Client(port)
        wait_for(lambda: client_ok(port), timeout=60, what="server up")
        base = "/api/v1/datasets/bench"
        client.get(base)  # opens the file, reads metadata
        idle_rss = proc_status_kb(proc.pid)["VmRSS"]
        rng = random.Random(1)
        first_gene = f"GENE{rng.randrange(N_GENES):05d}"
        _, headers, body, first_e2e = client.get(f"{base}/genes/{first_gene}")
        first_server = server_ms(headers)
        build_start = time.perf_counter() - first_e2e
        peaks = {"RssAnon": 0, "VmRSS": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                current = proc_status_kb(proc.pid)
                for key in peaks:
                    peaks[key] = max(peaks[key], current[key])
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        watcher = Client(port)
        while True:
            _, _, state, _ = watcher.get(f"{base}/gene-index")
            if b'"ready"' in state:
                break
            if b'"failed"' in state:
                raise SystemExit(f"index build failed: {state!r}")
            time.sleep(0.1)
        build_s = time.perf_counter() - build_start
        done.set()
        sampler.join()
        genes = [f"GENE{rng.randrange(N_GENES):05d}" for _ in range(50)]
        server_t, e2e_t, gz_t, gz_bytes = [], [], [], []
        for name in genes:
            _, headers, body, elapsed = client.get(f"{base}/genes/{name}")
            assert len(body) == SIZES[label] * 4
            server_t.append(server_ms(headers))
            e2e_t.append(elapsed * 1e3)
        for name in genes:
            _, headers, body, elapsed = client.get(f"{base}/genes/{name}", gzip=True)
            gz_t.append(elapsed * 1e3)
            gz_bytes.append(len(body))
        final = proc_status_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(cache, ignore_errors=True)
    mb = 1 / 1024
    return {
        "cells": f"{SIZES[label]:,}",
        "stored values": f"{nnz:,}",
        "first gene, scan: server / e2e (ms)": f"{first_server:.0f} / {first_e2e * 1e3:.0f}",
        "index build (s)": f"{build_s:.1f}",
        "build peak RSS: private / total (MB)": f"{peaks['RssAnon'] * mb:.0f} / {peaks['VmRSS'] * mb:.0f}",
        "indexed gene server p50 / p95 (ms)": f"{pct(server_t, .5):.2f} / {pct(server_t, .95):.2f}",
        "indexed gene e2e p50 / p95 (ms)": f"{pct(e2e_t, .5):.1f} / {pct(e2e_t, .95):.1f}",
        "indexed gene gzip e2e p50 (ms), mean KB": f"{pct(gz_t, .5):.1f}, {statistics.mean(gz_bytes) / 1024:.0f}",
        "server RSS idle / after, private after (MB)":
            f"{idle_rss * mb:.0f} / {final['VmRSS'] * mb:.0f}, {final['RssAnon'] * mb:.0f}",
        "anchor: bytes a browser moves via cellucid serve (MB)": f"{anchor / 1e6:,.0f}",
    }


def client_ok(port: int) -> bool:
    try:
        status, _, _, _ = Client(port).get("/api/v1/datasets")
        return status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m")
    args = parser.parse_args()
    results = {label: run(label) for label in args.sizes.split(",")}
    rows = list(next(iter(results.values())))
    width = max(len(r) for r in rows)
    print(f"| {'measure':<{width}} | " + " | ".join(results) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * (len(k) + 2) for k in results) + "|")
    for row in rows:
        print(f"| {row:<{width}} | " + " | ".join(r[row] for r in results.values()) + " |")


if __name__ == "__main__":
    main()
