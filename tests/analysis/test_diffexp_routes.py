"""The diffexp route's answers to bad requests, its background jobs (progress, cancel,
one analysis at a time), and the origin rules of every write route."""

from __future__ import annotations

import http.client
import threading

import numpy as np
import pytest

from cellucid_desktop.data import diffexp
from cellucid_desktop.data.errors import DatasetError
from cellucid_desktop.server import jobs
from tests.helpers import wait_for

GROUP = {"obs": "cluster", "value": "c2"}


@pytest.mark.parametrize("body, status, words", [
    ({"group": GROUP, "method": "anova"}, 400, "method must be one of"),
    ({"group": GROUP, "source": "layers/nothing"}, 404, "no expression source"),
    ({"group": GROUP, "n": 0}, 400, "n must be"),
    ({"group": {"cells": [3]}}, 400, "at least 2 cells"),
    ({"group": {"cells": [1, 2, 3]}, "reference": {"cells": [3, 4, 5]}}, 400, "share 1 cells"),
    ({"group": {"cells": [1, 2, 10 ** 7]}}, 400, "outside 0.."),
    ({"group": {"cells": "1,2"}}, 400, "list of cell row numbers"),
    ({"group": {"obs": "pct_mito", "value": "3"}}, 400, "holds numbers"),
    ({"group": {"obs": "cluster", "value": "c99"}}, 400, "no category 'c99'"),
    ({"group": {"obs": "nothing", "value": "a"}}, 404, "no obs column named 'nothing'"),
    ({"group": "c2"}, 400, '{"cells": [row, ...]}'),
    ({"group": GROUP, "reference": "everyone"}, 400, "The reference must be"),
])
def test_bad_requests_get_a_sentence_saying_what_to_change(pbmc_files, serve, body, status,
                                                           words):
    api, dataset_id = serve(pbmc_files["csr"])
    answer = api.post(f"/datasets/{dataset_id}/diffexp", body)
    assert answer.status == status, answer.body
    assert words in answer.json()["error"]


def test_a_boolean_column_category_is_a_group(pbmc, pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csr"])
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {
        "group": {"obs": "is_doublet", "value": True}, "n": 5})
    assert answer.status == 200, answer.body
    assert answer.json()["n_group"] == int(pbmc.obs["is_doublet"].sum())


def test_unknown_dataset_and_body_that_is_not_an_object(pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csr"])
    assert api.post("/datasets/nothing/diffexp", {"group": GROUP}).status == 404
    answer = api.post(f"/datasets/{dataset_id}/diffexp", [1, 2])
    assert answer.status == 400 and "JSON object" in answer.json()["error"]


def test_background_job_reports_progress_then_the_same_result(pbmc_files, serve):
    api, dataset_id = serve(pbmc_files["csc"])
    body = {"group": GROUP, "method": "wilcoxon", "n": 20}
    direct = api.post(f"/datasets/{dataset_id}/diffexp", body).json()
    started = api.post(f"/datasets/{dataset_id}/diffexp", {**body, "background": True})
    assert started.status == 202
    job = started.json()["job"]
    seen = []

    def finished():
        state = api.get(f"/jobs/{job}").json()
        seen.append(state["progress"])
        return state if state["state"] != "running" else None

    state = wait_for(finished, 60, 0.02, what="the job to finish")
    assert state == {"state": "done", "progress": 1.0, "message": "Done", "result": direct,
                     "error": None}
    assert seen == sorted(seen)


def held_compare(monkeypatch):
    """diffexp.compare replaced by one that reports progress until released."""
    release, running = threading.Event(), threading.Event()

    def compare(reader, source, groups, method, check, **kwargs):
        running.set()
        while not release.wait(0.01):
            check(0.25)
        return real(reader, source, groups, method, check, **kwargs)

    real = diffexp.compare
    monkeypatch.setattr(diffexp, "compare", compare)
    return release, running


def start_held_job(pbmc_files, serve, monkeypatch):  # noqa: ANN201 - (api, id, job, release)
    """A server whose first background comparison runs until ``release`` is set."""
    release, running = held_compare(monkeypatch)
    api, dataset_id = serve(pbmc_files["csr"])
    job = api.post(f"/datasets/{dataset_id}/diffexp",
                   {"group": GROUP, "background": True}).json()["job"]
    assert running.wait(30)
    return api, dataset_id, job, release


def test_cancelled_job_stops_and_frees_its_slot(pbmc_files, serve, monkeypatch):
    api, dataset_id, job, release = start_held_job(pbmc_files, serve, monkeypatch)
    state = wait_for(lambda: (s := api.get(f"/jobs/{job}").json())["progress"] > 0 and s, 30,
                     what="progress reported")
    assert state["state"] == "running" and state["result"] is None
    assert api.post(f"/jobs/{job}/cancel", b"", {"Content-Type": ""}).status == 200
    state = wait_for(lambda: (s := api.get(f"/jobs/{job}").json())["state"] != "running" and s,
                     30, what="the job to stop")
    assert state["state"] == "cancelled" and state["result"] is None
    release.set()
    # the slot is free again: a request that waits for its answer gets one
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {"group": GROUP, "n": 3})
    assert answer.status == 200 and len(answer.json()["genes"]) == 3


def test_a_second_analysis_waits_for_the_first(pbmc_files, serve, monkeypatch):
    api, dataset_id, first, release = start_held_job(pbmc_files, serve, monkeypatch)
    second = api.post(f"/datasets/{dataset_id}/diffexp",
                      {"group": {"obs": "cluster", "value": "c1"}, "background": True}).json()["job"]
    waiting = wait_for(lambda: (s := api.get(f"/jobs/{second}").json())["message"]
                       == jobs.WAITING and s, 30, what="the second job to wait")
    assert waiting["state"] == "running" and waiting["progress"] == 0
    release.set()
    for job in (first, second):
        done = wait_for(lambda j=job: (s := api.get(f"/jobs/{j}").json())["state"] == "done"
                        and s, 60, what="both jobs done")
        assert done["result"]["genes"]


def test_a_failing_job_reports_its_error_without_naming_the_local_file(pbmc_files, serve,
                                                                       monkeypatch):
    path = pbmc_files["csr"]

    def broken(*args, **kwargs):
        raise DatasetError(f"X of {path} is damaged: a test said so")

    monkeypatch.setattr(diffexp, "compare", broken)
    api, dataset_id = serve(path)
    job = api.post(f"/datasets/{dataset_id}/diffexp",
                   {"group": GROUP, "background": True}).json()["job"]
    state = wait_for(lambda: (s := api.get(f"/jobs/{job}").json())["state"] != "running" and s,
                     30, what="the job to fail")
    assert state["state"] == "failed"
    assert state["error"] == f"X of the file of dataset '{dataset_id}' is damaged: a test said so"
    assert api.get("/jobs/no-such-job").status == 404


@pytest.mark.parametrize("route, body", [
    ("diffexp", {"group": GROUP}),
    ("annotations", {"key": "mine", "categories": {"a": [1]}}),
    ("cells.csv", {"cells": [1]}),
    ("gene-set", {"genes": ["GENE1"]}),
])
def test_write_routes_refuse_other_web_pages_and_non_json(pbmc_files, serve, route, body):
    api, dataset_id = serve(pbmc_files["csr"])
    path = f"/datasets/{dataset_id}/{route}"
    own = f"http://127.0.0.1:{api.server.port}"
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{api.server.port + 1}",
                   "https://cellucid.com"):
        answer = api.post(path, body, {"Origin": origin})
        assert answer.status == 403, (origin, answer.body)
        assert "another web page" in answer.json()["error"]
    answer = api.post(path, body, {"Content-Type": "text/plain"})
    assert answer.status == 415 and "JSON" in answer.json()["error"]
    assert api.post(path, body, {"Origin": own}).status == 200
    assert api.post(path, body, {"Origin": f"http://localhost:{api.server.port}",
                                 "Host": f"localhost:{api.server.port}"}).status == 200
    # a page elsewhere cannot even be allowed to try: the preflight does not offer POST
    conn = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=30)
    conn.request("OPTIONS", f"/api/v1{path}", headers={
        "Origin": "http://localhost:9", "Access-Control-Request-Method": "POST"})
    preflight = conn.getresponse()
    assert "POST" not in preflight.getheader("Access-Control-Allow-Methods")
    conn.close()


def test_the_top_genes_of_a_cluster_are_its_markers(pbmc_files, serve):
    """The synthetic clusters' marker genes (lifted 3-12x) lead their cluster's table."""
    api, dataset_id = serve(pbmc_files["csr"])
    answer = api.post(f"/datasets/{dataset_id}/diffexp", {"group": GROUP, "n": 8})
    genes = answer.json()["genes"]
    assert all(g["logfoldchange"] > 1 and g["pvalue_adj"] < 1e-10 for g in genes)
    assert all(g["pct_group"] >= g["pct_reference"] for g in genes)
    scores = [g["score"] for g in genes]
    assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()
