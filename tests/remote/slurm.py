"""A private, real single-node Slurm on loopback: its own munged, slurmctld and slurmd.

Everything is per instance, so it never touches a system munged or Slurm and two test
runs can have one each: a munge key and socket in a private folder (``AuthInfo=socket=``
in a per-run ``slurm.conf``), free ports, a per-run cluster name, state, spool, log and
PID files. The only node is this machine under its short host name (it resolves to
127.0.0.1), with the CPUs and memory ``slurmd -C`` reports. Commands reach this cluster
only through ``SLURM_CONF`` (``env`` / ``run``). Needs root and the packages of
scripts/system-packages.sh.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

from cellucid_desktop.remote.child_process import die_with_parent
from tests.helpers import free_port, stop_process, wait_for
from tests.remote.mfa_sshd import require


class SlurmCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"cellucid{secrets.token_hex(3)}"
        self.node = socket.gethostname().split(".")[0]
        self.conf = root / "slurm.conf"
        self.munge_socket = root / "munge" / "munge.socket"
        self.jobs_dir = root / "jobs"
        self._daemons: list[subprocess.Popen] = []

    @property
    def env(self) -> dict[str, str]:
        """The environment for Slurm commands aimed at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> str:
        """A Slurm command (``sbatch``, ``squeue``, ``scancel``, ...) against this cluster;
        its stdout."""
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): "
                                 f"{done.stderr.strip()}")
        return done.stdout

    def sbatch(self, command: str, *options: str) -> str:
        """Submit ``sbatch --wrap COMMAND``; the job id."""
        return self.run("sbatch", "--parsable", f"--chdir={self.jobs_dir}",
                        f"--output={self.jobs_dir}/job-%j.out", *options,
                        "--wrap", command).strip().split(";")[0]

    def job(self, job_id: str) -> tuple[str, str]:
        """(state, node list) of a job, as ``squeue`` shows it; ("", "") once gone."""
        line = self.run("squeue", "--noheader", "--jobs", job_id, "--format=%T|%N",
                        check=False).strip()
        state, _, nodes = line.partition("|")
        return state, nodes

    def scancel(self, job_id: str) -> None:
        self.run("scancel", job_id)

    def start(self) -> SlurmCluster:
        require("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")
        for folder in ("munge", "state", "spool", "jobs"):
            (self.root / folder).mkdir(mode=0o700)
        (self.root / "munge").chmod(0o711)  # munged wants its socket folder traversable
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        self._spawn(["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                     f"--key-file={key}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                     f"--seed-file={self.root / 'munge' / 'seed'}"], "munged")
        wait_for(self.munge_socket.exists, 20, what="munged's socket")
        self._write_conf()
        self._spawn(["slurmctld", "-D", "-f", str(self.conf)], "slurmctld")
        self._spawn(["slurmd", "-D", "-f", str(self.conf)], "slurmd")
        wait_for(lambda: self.run("sinfo", "--noheader", "--format=%t", check=False)
                 .strip() == "idle", 60, what=f"node {self.node} idle in Slurm {self.name}")
        return self

    def stop(self) -> None:
        """Cancel every job (their processes belong to slurmstepd, not to slurmd), wait
        until they are gone, then stop the daemons by PID."""
        if self._daemons:
            jobs = self.run("squeue", "--noheader", "--format=%i", check=False).split()
            if jobs:
                self.run("scancel", "--full", *jobs, check=False)
            try:
                wait_for(lambda: not self.run("squeue", "--noheader", check=False).strip(),
                         30, what="jobs to end")
            finally:
                for proc in reversed(self._daemons):
                    stop_process(proc)
                self._daemons.clear()

    def _spawn(self, argv: list[str], name: str) -> None:
        with open(self.root / f"{name}.out", "ab") as log:
            self._daemons.append(subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent))  # a killed test run leaves no daemon behind

    def _write_conf(self) -> None:
        hardware = subprocess.run(["slurmd", "-C"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()[0]
        node_line = " ".join(w for w in hardware.split() if not w.startswith("NodeName="))
        settings = {
            "ClusterName": self.name,
            "SlurmctldHost": f"{self.node}(127.0.0.1)",
            "SlurmctldPort": free_port(), "SlurmdPort": free_port(),
            "AuthType": "auth/munge", "CredType": "cred/munge",
            "AuthInfo": f"socket={self.munge_socket}",
            "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core",
            "ReturnToService": 2, "SlurmUser": "root", "MpiDefault": "none",
            "MailProg": "/bin/true", "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none", "JobCompType": "jobcomp/none",
            "StateSaveLocation": self.root / "state", "SlurmdSpoolDir": self.root / "spool",
            "SlurmctldPidFile": self.root / "slurmctld.pid",
            "SlurmdPidFile": self.root / "slurmd.pid",
            "SlurmctldLogFile": self.root / "slurmctld.log",
            "SlurmdLogFile": self.root / "slurmd.log",
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        lines += [f"NodeName={self.node} NodeAddr=127.0.0.1 {node_line} State=UNKNOWN",
                  f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE "
                  "State=UP", ""]
        self.conf.write_text("\n".join(lines))
