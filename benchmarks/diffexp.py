"""Differential expression through the data API, against scanpy on the same data.

For the synthetic CSR files of benchmarks/gene_vectors.py (100k and 1M cells, 20k genes,
~311 stored values per cell), served by `cellucid-desktop serve` in a child process with
an empty cache folder (page cache warm), groups of 10% of the cells (random rows, so
every block of the file holds some) against the rest, each request timed end to end
(`POST .../diffexp`, JSON body with the rows, until the answer is read):

* t-test, first group: includes the one pass that sums the whole matrix (remembered);
* t-test, second group: reads only the group's rows;
* Wilcoxon, first group: includes building the gene index (one pass) and ranking every
  gene; Wilcoxon, second group: ranking only (index built);
* each request's wall time and the server's CPU time for it (user + system, all
  threads: what the machine's load does not change);
* the server's peak private memory (RssAnon) over all of it, and after;
* scanpy 1.11.5 `rank_genes_groups` (method t-test / wilcoxon, n_genes=100) on the same
  data read into memory with anndata, same groups (loading and numba's compilation not
  counted), where asked
  (`--scanpy-sizes`, `--scanpy-wilcoxon-sizes`): its time and our time / its time.

Usage: .venv/bin/python benchmarks/diffexp.py [--sizes 100k,1m] [--scanpy-sizes 100k,1m]
                                              [--scanpy-wilcoxon-sizes 100k]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (BENCH_AUTH, DATA, proc_status_kb, token_file,  # noqa: E402
                                warm_page_cache)
from benchmarks.gene_vectors import SIZES, dataset_file  # noqa: E402
from tests.helpers import free_port, wait_for  # noqa: E402


def groups(n_cells: int) -> list[list[int]]:
    """Two different groups of 10% of the cells, at random rows."""
    rng = np.random.default_rng(12)
    return [np.sort(rng.choice(n_cells, n_cells // 10, replace=False)).tolist()
            for _ in range(2)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def post(port: int, pid: int, path: str, body: dict) -> tuple[float, float, dict]:
    """(wall seconds, server CPU seconds, answer) of one POST."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json", **BENCH_AUTH})
    response = conn.getresponse()
    answer = json.loads(response.read())
    elapsed = time.perf_counter() - start
    conn.close()
    if response.status != 200:
        raise SystemExit(f"{path}: HTTP {response.status} {answer}")
    return elapsed, cpu_seconds(pid) - cpu, answer


def ours(path: Path, n_cells: int) -> dict[str, float]:
    cache = Path(tempfile.mkdtemp(prefix="diffexp-bench-cache-", dir=DATA))
    port = free_port()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "XDG_DATA_HOME": str(cache),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cellucid_desktop", "serve", str(path),
                             "--port", str(port), "--no-browser", "--quiet",
                             "--dataset-id", "bench", "--token-file", str(token_file(cache))],
                            env=env, cwd=ROOT)
    peak = {"RssAnon": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["RssAnon"] = max(peak["RssAnon"], proc_status_kb(proc.pid)["RssAnon"])
            time.sleep(0.05)

    try:
        wait_for(lambda: _up(port), timeout=60, what="server up")
        sampler = threading.Thread(target=sample)
        sampler.start()
        url = "/api/v1/datasets/bench/diffexp"
        first, second = groups(n_cells)
        times = {}
        for method in ("t-test", "wilcoxon"):
            for label, group in (("first", first), ("second", second)):
                wall, cpu, answer = post(port, proc.pid, url, {
                    "group": {"cells": group}, "method": method, "n": 100})
                times[f"{method} {label}"] = (wall, cpu)
                assert answer["n_group"] == len(group) and len(answer["genes"]) == 100
        done.set()
        sampler.join()
        times["peak / after RssAnon (MB)"] = (peak["RssAnon"] / 1024,
                                              proc_status_kb(proc.pid)["RssAnon"] / 1024)
        return times
    finally:
        done.set()
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(cache, ignore_errors=True)


def _up(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/api/v1/datasets", headers=BENCH_AUTH)
        return conn.getresponse().status == 200
    except OSError:
        return False


def scanpy_times(path: Path, n_cells: int, methods: list[str]) -> dict[str, float]:
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    from scipy import sparse

    adata = ad.read_h5ad(path)
    x = adata.X  # our writer stores int64 indptr with int32 indices; scipy wants one type
    adata.X = sparse.csr_matrix((x.data, x.indices, x.indptr), shape=x.shape)
    warm = ad.AnnData(sparse.random(60, 30, density=0.3, format="csr", dtype=np.float32,
                                    random_state=0))
    warm.obs["pick"] = pd.Categorical(["in", "out"] * 30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in methods:  # numba compiles scanpy's kernels once: not counted
            sc.tl.rank_genes_groups(warm, "pick", groups=["in"], method=method)
    times = {}
    for method in methods:
        for label, group in zip(("first", "second"), groups(n_cells)):
            flag = np.zeros(n_cells, dtype=bool)
            flag[group] = True
            adata.obs["pick"] = pd.Categorical(np.where(flag, "in", "out"))
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sc.tl.rank_genes_groups(adata, "pick", groups=["in"], reference="rest",
                                        method=method, n_genes=100, use_raw=False)
            times[f"{method} {label}"] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1m")
    parser.add_argument("--scanpy-sizes", default="100k,1m",
                        help="sizes at which scanpy's t-test is timed too")
    parser.add_argument("--scanpy-wilcoxon-sizes", default="100k",
                        help="sizes at which scanpy's Wilcoxon is timed too (slow)")
    args = parser.parse_args()
    rows = []
    for label in args.sizes.split(","):
        path = dataset_file(label)
        warm_page_cache(path)
        n_cells = SIZES[label]
        mine = ours(path, n_cells)
        methods = [m for m, sizes in (("t-test", args.scanpy_sizes),
                                      ("wilcoxon", args.scanpy_wilcoxon_sizes))
                   if label in sizes.split(",")]
        theirs = scanpy_times(path, n_cells, methods) if methods else {}
        for key, (first, second) in mine.items():
            if key.endswith("(MB)"):
                rows.append((f"{n_cells:,}", key, f"{first:.0f} / {second:.0f}", "", "", ""))
                continue
            other = theirs.get(key)
            rows.append((f"{n_cells:,}", key, f"{first:.2f}", f"{second:.2f}",
                         f"{other:.2f}" if other else "-",
                         f"{first / other:.3f}" if other else "-"))
    print("| cells | measure | ours, wall (s) | ours, server CPU (s) | scanpy, wall (s) "
          "| ours / scanpy (wall) |")
    print("|---:|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
