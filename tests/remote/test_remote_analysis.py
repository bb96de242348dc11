"""Analyses on a remote dataset, through an SSH tunnel: through the local proxy's data
API in front of `cellucid serve` 0.9.5 (the file read by HTTP Range), and through the
proxy in front of our own `cellucid-desktop serve` (the POSTs forwarded). Answers equal
those of a local server on the same file; saved selections of a remote dataset are kept
locally and found again on the next connection."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from cellucid_desktop import paths
from cellucid_desktop.data.annotations import SIDECAR_SUFFIX
from cellucid_desktop.remote.session import RemoteSession
from tests.remote.conftest import spec_for
from tests.remote.servers import ServeProcess, desktop_serve
from tests.helpers import wait_for
from tests.remote.sshd import SshLab

BODIES = [{"group": {"obs": "cell_type", "value": "T cell CD4"}, "method": "t-test", "n": 30},
          {"group": {"obs": "cell_type", "value": "B cell"},
           "reference": {"obs": "cell_type", "value": "NK cell"}, "method": "wilcoxon",
           "n": 30, "source": "X"}]


def request(origin: str, method: str, path: str, body: object | None = None,
            headers: dict[str, str] | None = None,
            token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(origin)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={
            **({"Content-Type": "application/json"} if data else {}),
            **({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def post_json(origin: str, path: str, body: object, token: str | None = None) -> dict:
    status, _, data = request(origin, "POST", path, body, token=token)
    assert status == 200, data
    return json.loads(data)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def test_analyses_through_the_proxy_data_api_in_front_of_cellucid_serve(
        ssh_lab: SshLab, g2_remote: ServeProcess, local_api: str, small_h5ad: Path) -> None:
    base = "/api/v1/datasets/remote-data"
    session = RemoteSession(spec_for(ssh_lab, g2_remote.port))
    try:
        view = session.open()
        assert not view.direct and session.data_service is not None
        proxy, token = origin_of(view.url), session.proxy.server.token
        for body in BODIES:
            assert post_json(proxy, f"{base}/diffexp", body, token) == \
                post_json(local_api, f"{base}/diffexp", body)
        listing = post_json(proxy, f"{base}/annotations",
                            {"key": "remote pick", "categories": {"a": [0, 5, 9]}}, token)
        assert listing["columns"] == [{"key": "remote pick", "categories": ["a"],
                                       "counts": [3]}]
        status, _, codes = request(proxy, "GET", f"{base}/obs/remote%20pick/values",
                                   token=token)
        assert status == 200
        assert np.flatnonzero(np.frombuffer(codes, "<u2") == 0).tolist() == [0, 5, 9]
        status, _, csv = request(proxy, "POST", f"{base}/cells.csv",
                                 {"cells": [5], "columns": ["remote pick"]}, token=token)
        assert csv.decode().splitlines() == ["barcode,remote pick", "cell5,a"]
        # kept on this machine, keyed by the remote file; never next to the served file
        assert len(list((paths.data_dir() / "annotations").glob("*.h5"))) == 1
        assert not small_h5ad.with_name(small_h5ad.name + SIDECAR_SUFFIX).exists()
    finally:
        session.close()
    again = RemoteSession(spec_for(ssh_lab, g2_remote.port))
    try:
        proxy = origin_of(again.open().url)
        status, _, document = request(proxy, "GET", base, token=again.proxy.server.token)
        assert {"key": "remote pick", "kind": "categorical", "n_categories": 1,
                "annotation": True} in json.loads(document)["obs"]
    finally:
        again.close()


def test_analyses_through_the_proxy_in_front_of_our_remote_serve(
        ssh_lab: SshLab, small_h5ad: Path, local_api: str, tmp_path: Path) -> None:
    """The remote's port is taken here, so the tunnel's end differs and the proxy
    forwards everything, POSTs included, to our server on the remote (with its token)."""
    remote_file = Path(shutil.copy(small_h5ad, tmp_path / "remote.h5ad"))
    remote = desktop_serve(remote_file)
    session = RemoteSession(spec_for(ssh_lab, remote.port), token=remote.token)
    base = "/api/v1/datasets/remote-data"
    try:
        view = session.open()
        assert not view.direct and session.data_service is None  # all forwarded
        proxy, token = origin_of(view.url), session.proxy.server.token
        for body in BODIES:
            assert post_json(proxy, f"{base}/diffexp", body, token) == \
                post_json(local_api, f"{base}/diffexp", body)
        status, _, data = request(proxy, "POST", f"{base}/diffexp",
                                  {**BODIES[0], "background": True}, token=token)
        assert status == 202
        job = json.loads(data)["job"]
        state = wait_for(lambda: (s := json.loads(request(proxy, "GET", f"/api/v1/jobs/{job}",
                                                          token=token)[2]))
                         ["state"] != "running" and s, 60, 0.05, what="the remote job")
        assert state["state"] == "done" and state["result"]["genes"]
        post_json(proxy, f"{base}/annotations", {"key": "picked", "categories": {"x": [1, 2]}},
                  token)
        # our remote server keeps the sidecar next to its file, on the remote
        assert remote_file.with_name(remote_file.name + SIDECAR_SUFFIX).is_file()
        # a page elsewhere is refused by the proxy itself (the remote never sees it)
        status, _, data = request(proxy, "POST", f"{base}/annotations/picked/delete", {},
                                  {"Origin": "http://evil.example"}, token)
        assert status == 403 and "another web page" in json.loads(data)["error"]
        assert post_json(proxy, f"{base}/annotations/picked/delete", {}, token)["columns"] == []
    finally:
        session.close()
        remote.stop()
