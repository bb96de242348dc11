"""Opening and the first gene: the same 1M-cell dataset as `.h5ad` and as AnnData Zarr.

The synthetic CSR dataset of benchmarks/gene_vectors.py (1M cells, 20k genes, ~311 stored
values per cell) is written once as `.h5ad` and converted with anndata to Zarr format 3
and format 2 folders (anndata's default codecs: zstd for format 3, blosc-lz4 for 2) and a
zipped format-3 store. For each, with the page cache warm:

* serve → health: `cellucid-desktop serve` from process start until `/_cellucid/health`
  answers (detect, read metadata, bind), next to `cellucid serve` 0.9.5 on the same store
  (ratio ours / theirs);
* open: the first `GET /api/v1/datasets/<id>` on a fresh server (opens the store, lists
  embeddings and columns), end to end;
* first embedding and first obs column (end to end);
* first gene: the scan before the gene index exists (server time, Server-Timing), which
  reads every stored gene index (chunk by chunk for Zarr);
* index build: from the first gene until the gene index is ready; then an indexed gene.

Usage: .venv/bin/python benchmarks/formats.py [--cells 1000000]
Files are made once under benchmarks/data/ (the 1M conversion takes a few minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import DATA, synthetic_file, token_file, warm_page_cache  # noqa: E402
from benchmarks.gene_vectors import N_GENES, PER_CELL, Client, server_ms  # noqa: E402
from tests.helpers import free_port, wait_for  # noqa: E402
from tests.server.reference import raw_request  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def stores(n_cells: int) -> dict[str, Path]:
    """The dataset as `.h5ad`, Zarr 3 and Zarr 2 folders, and a zipped Zarr 3 store."""
    label = f"{n_cells // 1000}k" if n_cells < 1_000_000 else f"{n_cells // 1_000_000}m"
    h5ad = synthetic_file(f"genes-{label}.h5ad", n_cells, N_GENES, genes_per_cell=PER_CELL,
                          seed=0)
    out = {"h5ad": h5ad}
    adata = None
    for fmt in (3, 2):
        folder = DATA / f"genes-{label}-v{fmt}.zarr"
        if not folder.exists():
            import anndata as ad

            print(f"converting to {folder} (once) ...", flush=True)
            adata = adata if adata is not None else ad.read_h5ad(h5ad)
            partial = folder.with_name(folder.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            with ad.settings.override(zarr_write_format=fmt):
                adata.write_zarr(partial)
            partial.rename(folder)
        out[f"zarr v{fmt} folder"] = folder
    zipped = DATA / f"genes-{label}-v3.zarr.zip"
    if not zipped.exists():
        print(f"zipping {zipped} (once) ...", flush=True)
        partial = zipped.with_name(zipped.name + ".partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for directory, _, files in sorted(os.walk(out["zarr v3 folder"])):
                for name in sorted(files):
                    full = Path(directory, name)
                    archive.write(full, full.relative_to(out["zarr v3 folder"]).as_posix())
        partial.rename(zipped)
    out["zarr v3 zip"] = zipped
    return out


def warm(path: Path) -> None:
    for file in ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())):
        warm_page_cache(file)


def health_after_start(argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, int, float]:
    """(process, port, seconds from start until health answers 200)."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen([*argv, "--port", str(port), "--no-browser"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: raw_request(port, "GET", "/_cellucid/health").status == 200,
             timeout=600, interval=0.02, what=f"{argv[0]} health")
    return proc, port, time.perf_counter() - start


def run(name: str, path: Path) -> dict[str, str]:
    warm(path)
    size = path.stat().st_size if path.is_file() else sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file())
    theirs, _, their_start = health_after_start(
        [str(VENV_BIN / "cellucid"), "serve", str(path), "--no-web-ui", "--dataset-id", "bench",
         "--dataset-name", "Bench", "--quiet"], dict(os.environ))
    theirs.terminate()
    theirs.wait(30)
    cache = Path(tempfile.mkdtemp(prefix="formats-bench-cache-", dir=DATA))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    proc, port, our_start = health_after_start(
        [sys.executable, "-m", "cellucid_desktop", "serve", str(path), "--quiet",
         "--dataset-id", "bench", "--token-file", str(token_file(cache))], env)
    try:
        client = Client(port)
        base = "/api/v1/datasets/bench"
        _, _, _, open_s = client.get(base)
        _, _, _, embedding_s = client.get(f"{base}/embeddings/X_umap")
        _, _, _, obs_s = client.get(f"{base}/obs/cell_type/values")
        _, headers, body, gene_e2e = client.get(f"{base}/genes/GENE00007")
        assert len(body) % 4 == 0
        first_gene = server_ms(headers)
        build_start = time.perf_counter() - gene_e2e
        wait_for(lambda: b'"ready"' in client.get(f"{base}/gene-index")[2], timeout=1800,
                 interval=0.2, what="the gene index")
        build_s = time.perf_counter() - build_start
        _, headers, _, _ = client.get(f"{base}/genes/GENE00123")
        indexed = server_ms(headers)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(cache, ignore_errors=True)
    return {
        "store": name,
        "size (MB)": f"{size / 1e6:,.0f}",
        "serve → health: ours / cellucid (s), ratio":
            f"{our_start:.2f} / {their_start:.2f}, {our_start / their_start:.2f}",
        "open: first describe (ms)": f"{open_s * 1e3:.0f}",
        "first embedding / obs column (ms)": f"{embedding_s * 1e3:.0f} / {obs_s * 1e3:.0f}",
        "first gene, scan: server (ms)": f"{first_gene:.0f}",
        "index build (s)": f"{build_s:.1f}",
        "indexed gene: server (ms)": f"{indexed:.2f}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = [run(name, path) for name, path in stores(args.cells).items()]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(row[k] for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
