"""The server, data and tunnel tests again, in a Python without the POSIX-only calls
Windows lacks (see no_posix/sitecustomize.py): the portable code paths run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDER = Path(__file__).with_name("no_posix")
HIDDEN = ("sendfile", "preadv", "pread", "pwrite", "killpg")
# What runs on every OS and touches the hidden calls (or their fallbacks).
SUITE = [
    "tests/server",
    "tests/data",
    "tests/data_api",
    "tests/analysis",  # the gene index, ranks and DE passes read with the fallbacks
    "tests/cli/test_serve_cli.py",
    "tests/remote/test_tunnel.py",
    "tests/remote/test_range_file.py",
    "tests/remote/test_session.py",
    "tests/remote/test_cli_connect.py",
]


def hidden_env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(HIDER), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "CELLUCID_HIDE_POSIX": "1"}


def test_the_hidden_calls_are_really_gone_in_child_processes() -> None:
    probe = ("import os, signal; print(sorted(n for n in %r if hasattr(os, n)), "
             "hasattr(signal, 'SIGKILL'))" % (HIDDEN,))
    out = subprocess.run([sys.executable, "-c", probe], env=hidden_env(), capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out == "[] False"


@pytest.mark.timeout(1800)
def test_server_data_and_tunnel_suites_pass_without_posix_only_calls() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--timeout=120", *SUITE], cwd=ROOT, env=hidden_env(), capture_output=True,
                            text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-4000:]
