"""The one HTTP client (urllib3) against the hand-made http.client it replaced, and httpx.

One loopback server (ours, with its token) on a 70 MB file; the same keep-alive Range
GETs of 1 KiB, 1 MiB and 16 MiB (RangeFile asks for up to 16 MiB at once; the proxy
streams bodies in 256 KiB chunks) through:

* ``http.client``: what RangeFile and the proxy used before (one kept-alive connection);
* ``http_client.Client`` (urllib3): what they use now, whole bodies and streamed;
* ``httpx`` (if installed; not a dependency), the other candidate, whole and streamed.

Each cell is the best of 3 rounds (milliseconds per request). Then RangeFile itself:
a cold sequential read of the whole file in 16 MiB runs (MB/s).

Usage: .venv/bin/python benchmarks/http_client.py
"""

from __future__ import annotations

import http.client
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import synthetic_file, warm_page_cache  # noqa: E402

from cellucid_desktop.http_client import Client, Endpoint  # noqa: E402
from cellucid_desktop.remote.range_file import RangeFile  # noqa: E402
from cellucid_desktop.server.registry import DatasetRegistry  # noqa: E402
from cellucid_desktop.server.runner import ServerThread  # noqa: E402

SIZES = {"1 KiB": (1 << 10, 400), "1 MiB": (1 << 20, 60), "16 MiB": (16 << 20, 8)}
CHUNK = 256 * 1024


def main() -> None:
    path = synthetic_file("http-client.h5ad", 100_000, 2_000, genes_per_cell=60, seed=1)
    warm_page_cache(path)
    registry = DatasetRegistry()
    registry.add(path, dataset_id="bench")
    route = "/_cellucid/anndata/bench.h5ad"
    with ServerThread(registry) as server:
        auth = {"Authorization": f"Bearer {server.token}"}

        def stdlib(length: int, n: int) -> float:
            conn = http.client.HTTPConnection("127.0.0.1", server.port)
            start = time.perf_counter()
            for _ in range(n):
                conn.request("GET", route, headers={"Range": f"bytes=0-{length - 1}", **auth})
                assert len(conn.getresponse().read()) == length
            conn.close()
            return (time.perf_counter() - start) / n

        def ours(length: int, n: int, stream: bool = False) -> float:
            client = Client(Endpoint(port=server.port, token=server.token), maxsize=1)
            start = time.perf_counter()
            for _ in range(n):
                headers = {"Range": f"bytes=0-{length - 1}"}
                if stream:
                    response = client.request("GET", route, headers=headers, stream=True)
                    got = sum(len(c) for c in response.stream(CHUNK, decode_content=False))
                    response.release_conn()
                else:
                    got = len(client.get(route, headers=headers).body)
                assert got == length
            client.close()
            return (time.perf_counter() - start) / n

        candidates: dict[str, Callable[[int, int], float]] = {
            "http.client (before)": stdlib,
            "http_client.Client, whole": ours,
            "http_client.Client, streamed": lambda length, n: ours(length, n, True)}
        try:
            import httpx
        except ImportError:
            httpx = None
        if httpx is not None:
            def with_httpx(length: int, n: int, stream: bool = False) -> float:
                client = httpx.Client(base_url=server.url, headers=auth, trust_env=False)
                start = time.perf_counter()
                for _ in range(n):
                    headers = {"Range": f"bytes=0-{length - 1}"}
                    if stream:
                        with client.stream("GET", route, headers=headers) as response:
                            got = sum(len(c) for c in response.iter_raw(CHUNK))
                    else:
                        got = len(client.get(route, headers=headers).content)
                    assert got == length
                client.close()
                return (time.perf_counter() - start) / n
            candidates["httpx, whole"] = with_httpx
            candidates["httpx, streamed"] = lambda length, n: with_httpx(length, n, True)

        best = {(name, size): float("inf") for name in candidates for size in SIZES}
        for _round in range(3):  # alternate, so drift in machine load hits every client
            for size, (length, n) in SIZES.items():
                for name, run in candidates.items():
                    best[name, size] = min(best[name, size], run(length, n))
        start = time.perf_counter()
        remote = RangeFile(f"{server.url}{route}", token=server.token, block_size=1 << 20)
        remote.pread(0, remote.size)
        rangefile_mbs = remote.size / (time.perf_counter() - start) / 1e6
        remote.close()
    print(f"\nfile: {path.name} ({path.stat().st_size / 1e6:.0f} MB), loopback, ms per request "
          "(best of 3)\n")
    print(f"| {'client':<30}|" + "|".join(f" {s:>8} " for s in SIZES) + "|")
    print(f"|{'-' * 31}|" + "|".join("-" * 10 for _ in SIZES) + "|")
    for name in candidates:
        print(f"| {name:<30}|" + "|".join(f" {best[name, s] * 1000:8.2f} " for s in SIZES) + "|")
    if httpx is None:
        print("\n(httpx is not installed: pip install httpx to add its rows)")
    print(f"\nRangeFile, whole file in 16 MiB runs: {rangefile_mbs:,.0f} MB/s")


if __name__ == "__main__":
    main()
