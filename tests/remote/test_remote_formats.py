"""Zarr, MuData and loom stores on a remote server, through the real sshd tunnel and the
local proxy. On cellucid 0.9.5 (raw store only) the local data API reads them over HTTP
(a Zarr folder key by key, zips and HDF5 files by Range requests) and answers what a
local read answers, a gene costing its chunks, not the store; our own serve answers the
data API itself on the remote side, and the proxy forwards it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cellucid_desktop.remote.session import RemoteSession
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.runner import ServerThread
from tests.formats.stores import Case
from tests.remote.conftest import spec_for
from tests.remote.servers import ServeProcess, cellucid_serve, desktop_serve
from tests.remote.sshd import SshLab

REMOTES = {  # name -> (format case, modality, served by: cellucid 0.9.5 or ours)
    "zarr-v2-folder-cellucid": ("zarr-v2-unconsolidated", None, "cellucid"),
    "zarr-v3-folder-ours": ("zarr-v3-folder", None, "desktop"),
    "zarr-zip-cellucid": ("zarr-v3-zip", None, "cellucid"),
    "h5mu-prot-cellucid": ("h5mu-citeseq-prot", "prot", "cellucid"),
    "loom-cellucid": ("loom-loompy", None, "cellucid"),
}


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=60) as resp:
        return resp.status, dict(resp.headers), resp.read()


@pytest.fixture(scope="module", params=list(REMOTES))
def remote(request, format_cases: dict[str, Case],
           ) -> Iterator[tuple[ServeProcess, Case, str | None, str]]:
    case_name, modality, server = REMOTES[request.param]
    case = format_cases[case_name]
    extra = ("--modality", modality) if modality else ()
    process = (cellucid_serve(case.path, *extra) if server == "cellucid"
               else desktop_serve(case.path))
    yield process, case, modality, server
    process.stop()


def test_a_remote_store_is_read_over_http_like_the_local_one(
        ssh_lab: SshLab, remote: tuple[ServeProcess, Case, str | None, str]) -> None:
    process, case, modality, server = remote
    registry = DatasetRegistry()
    registry.add(case.path, dataset_id="remote-data", name="Remote data", modality=modality)
    local = ServerThread(registry, token=None).start()
    session = RemoteSession(spec_for(ssh_lab, process.port), token=process.token)
    try:
        view = session.open()
        base = view.url.split("/?", 1)[0]
        token = session.proxy.server.token  # the local proxy's own
        assert not view.direct and "dataset=remote-data" in view.url
        remote_ds = json.loads(_get(f"{base}/api/v1/datasets/remote-data", token)[2])
        local_ds = json.loads(_get(f"{local.url}/api/v1/datasets/remote-data")[2])
        for key in ("n_cells", "n_genes", "embeddings", "obs", "expression_sources"):
            assert remote_ds[key] == local_ds[key], key
        paths = [f"embeddings/{e['key']}" for e in local_ds["embeddings"][:2]]
        paths += [f"obs/{c['key']}/values" for c in local_ds["obs"][:3]]
        gene = case.reference.var_names[1]
        paths.append(f"genes/{gene}")
        for path in paths:
            status, headers, body = _get(f"{base}/api/v1/datasets/remote-data/{path}", token)
            assert status == 200
            assert body == _get(f"{local.url}/api/v1/datasets/remote-data/{path}")[2], path
            if server != "cellucid":
                continue  # our serve computes the answer remotely: no remote reads here
            cost = int(headers["X-Remote-Bytes"])
            if path.startswith("genes/") and case.kind == "zarr" and case.path.is_dir():
                store_bytes = sum(p.stat().st_size for p in case.path.rglob("*") if p.is_file())
                assert 0 < cost < store_bytes // 2, f"a gene cost {cost} of {store_bytes} bytes"
        if modality:  # the other modalities of a remote MuData are datasets too
            listed = json.loads(_get(f"{base}/api/v1/datasets", token)[2])["datasets"]
            assert {d["id"] for d in listed} == {"remote-data", "remote-data-rna"}
    finally:
        session.close()
        local.stop()


def test_remote_desktop_serve_publishes_a_zarr_folder_key_by_key(
        format_cases: dict[str, Case]) -> None:
    """Our own serve, as a remote, publishes the store the way cellucid does, so either can
    be the remote of a Zarr dataset (the test above reads one through the tunnel)."""
    case = format_cases["zarr-v3-folder"]
    process = desktop_serve(case.path)
    try:
        base = f"http://127.0.0.1:{process.port}"
        entry = json.loads(_get(f"{base}/_cellucid/datasets", process.token)[2])["datasets"][0]
        assert entry["anndata"]["file"]["url"] == "_cellucid/anndata/remote-data.zarr/"
        status, _, body = _get(f"{base}/_cellucid/anndata/remote-data.zarr/zarr.json",
                               process.token)
        assert status == 200 and body == Path(case.path, "zarr.json").read_bytes()
    finally:
        process.stop()
