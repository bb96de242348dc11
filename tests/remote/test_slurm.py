"""The private single-node Slurm fixture really schedules: a batch job runs on the node,
a server it starts answers on 127.0.0.1, and scancel ends it."""

from __future__ import annotations

import socket
import urllib.request

from tests.helpers import free_port, wait_for
from tests.remote.slurm import SlurmCluster


def _answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
        return answer.status == 200


def test_a_batch_job_runs_a_server_on_the_node_until_cancelled(slurm: SlurmCluster) -> None:
    port = free_port()
    job = slurm.sbatch(f"exec python3 -m http.server --bind 127.0.0.1 {port}",
                       "--job-name=cellucid-smoke", "--time=10")
    assert job.isdigit()
    assert wait_for(lambda: slurm.job(job) == ("RUNNING", slurm.node), 60,
                    what=f"job {job} running on {slurm.node}")
    assert wait_for(lambda: _answers(port), 30, what="the job's server")
    assert "JobName=cellucid-smoke" in slurm.run("scontrol", "show", "job", job)

    slurm.scancel(job)
    wait_for(lambda: slurm.job(job)[0] in ("", "COMPLETING", "CANCELLED"), 30,
             what=f"job {job} cancelled")
    wait_for(lambda: not _port_open(port), 30, what="the job's server to stop")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_commands_reach_only_the_private_cluster(slurm: SlurmCluster) -> None:
    config = slurm.run("scontrol", "show", "config")
    assert f"ClusterName             = {slurm.name}" in config
    assert f"AuthInfo                = socket={slurm.munge_socket}" in config
