"""The pure parts of opening a remote file: the plan and its JSON, Slurm options and
their allow-list, and what the launcher reads from a server's banner."""

from __future__ import annotations

import json

import pytest

from cellucid_desktop.remote.opening import LaunchPlan, SlurmOptions
from cellucid_desktop.remote.remote_shell import banner_endpoint, dataset_identity
from cellucid_desktop.remote.slurm_job import check_sbatch_arg
from cellucid_desktop.remote.ssh_command import SpecError, TunnelSpec


def test_a_plan_survives_its_json_for_the_control_route() -> None:
    plan = LaunchPlan(TunnelSpec("login", jump=("gw",), options=("Compression=yes",)),
                      " ~/a b.h5ad ", where="slurm", env=" module load x ",
                      slurm=SlurmOptions(partition="debug", extra=("--gres=gpu:1",)),
                      keep_running=True).validated()
    assert plan.path == "~/a b.h5ad" and plan.env == "module load x"
    assert LaunchPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_the_server_decides_where_it_listens_not_the_plan() -> None:
    plan = LaunchPlan(TunnelSpec("login", node="c042", remote_socket="server.sock"), "x.h5ad")
    tunnel = plan.validated().tunnel
    assert tunnel.node is None and tunnel.remote_socket is None


@pytest.mark.parametrize(("change", "sentence"), [
    ({"path": "  "}, "Choose the dataset to open"),
    ({"path": "a\nb.h5ad"}, "contains control characters"),
    ({"where": "cloud"}, "must be one of host, slurm"),
    ({"program": "python"}, "must be one of auto, cellucid-desktop, cellucid"),
    ({"env": "a\nb"}, "must be a single line"),
    ({"env": "module load python\n"}, "must be a single line"),
    ({"where": "slurm", "slurm": SlurmOptions(time="soon")}, "Time limit 'soon' is not valid"),
    ({"where": "slurm", "slurm": SlurmOptions(mem="lots")}, "Memory 'lots' is not valid"),
    ({"where": "slurm", "slurm": SlurmOptions(partition="a b")}, "Partition 'a b' is not"),
])
def test_a_bad_plan_is_refused_with_one_sentence(change: dict, sentence: str) -> None:
    raw = {"tunnel": TunnelSpec("login"), "path": "x.h5ad", **change}
    with pytest.raises(SpecError, match=sentence):
        LaunchPlan(**raw).validated()


@pytest.mark.parametrize("arg", ["--gres=gpu:1", "--qos=interactive", "--exclusive",
                                 "--cpus-per-task=4", "--constraint=skylake"])
def test_allowed_sbatch_options_pass(arg: str) -> None:
    assert check_sbatch_arg(arg) == arg


@pytest.mark.parametrize(("arg", "sentence"), [
    ("--output=/tmp/x", "--output is not allowed"),
    ("--wrap=rm -rf ~", "should look like --name=value"),
    ("--export=ALL", "--export is not allowed"),
    ("--uid=0", "--uid is not allowed"),
    ("--dependency=afterok:1", "--dependency is not allowed"),
    ("-p debug", "should look like --name=value"),
    ("--qos", "needs a value"),
    ("--requeue=yes", "takes no value"),
])
def test_other_sbatch_options_are_refused(arg: str, sentence: str) -> None:
    with pytest.raises(SpecError, match=sentence):
        check_sbatch_arg(arg)


def test_slurm_options_become_single_sbatch_words() -> None:
    options = SlurmOptions(partition="gpu,cpu", time="1-12:00", mem="16G", account="lab",
                           extra=("--gres=gpu:1",))
    assert options.sbatch_args() == ["--partition=gpu,cpu", "--time=1-12:00", "--mem=16G",
                                      "--account=lab", "--gres=gpu:1"]


def test_banner_gives_the_socket_or_the_bound_port() -> None:
    ours = ["  Socket:       /run/user/1000/cellucid-desktop/serve-1a.sock",
            "  Viewer URL:   http://127.0.0.1:8765/?dataset=x&token=t"]
    assert banner_endpoint(ours) == ("/run/user/1000/cellucid-desktop/serve-1a.sock",
                                     None, None)
    job = ["  Local URL:    http://c042:41135", "  Viewer URL:   http://c042:41135/?x"]
    assert banner_endpoint(job) == (None, 41135, "c042")
    assert banner_endpoint(["  Local URL:    http://[::1]:9000/"]) == (None, 9000, "[::1]")


@pytest.mark.parametrize(("path", "ident", "name"), [
    ("/data/pbmc 3k.h5ad", "pbmc-3k", "pbmc 3k"),
    ("~/atlas.zarr/", "atlas", "atlas"),
    ("/x/sample.zarr.zip", "sample", "sample"),
    ("/x/_hidden.loom", "hidden", "_hidden"),
    ("/x/.h5ad", "h5ad", ".h5ad"),
    ("/x/données.h5mu", "donn-es", "données"),
])
def test_dataset_identity_follows_the_file_name(path: str, ident: str, name: str) -> None:
    assert dataset_identity(path) == (ident, name)


def test_the_last_words_of_a_log_are_after_its_banner() -> None:
    from cellucid_desktop.remote.server_launch import last_words

    banner = ["  Dataset: x", "════", "  CELLUCID SERVER RUNNING", "════", "",
              "  Viewer URL:   http://127.0.0.1:1/", "", "  Press Ctrl+C to stop", "", "════"]
    assert last_words(banner) == ""  # ended by a signal: nothing more said
    assert last_words([*banner, "MemoryError: cannot allocate", ""]) == \
        "MemoryError: cannot allocate"
    assert last_words(["Error: x.h5ad is not an HDF5 file", ""]) == \
        "Error: x.h5ad is not an HDF5 file"
