"""Signing in once: how fast the askpass helper relays a prompt, how long a master takes
to sign in, and what a command or forward costs over it compared with a fresh ssh.

Real parts on 127.0.0.1 (so no network round trips: a real link adds its RTT to each
fresh connection, which the master saves): the key-only sshd pair of tests/remote/sshd.py
and the password + one-time-code sshd of tests/remote/mfa_sshd.py (root needed: it adds a
temporary user and PAM service). Answers come from a script, instantly, so sign-in times
are ssh + sshd + PAM, not a person typing.

Rows (median / min / max of --runs):
* helper relay: the helper process started as ssh starts it, until the answer is on its
  stdout (console script, ``python -m`` wrapper, and the frozen binary with --frozen);
* master sign-in: ``Master.start()`` until the control socket answers;
* a command over the master vs. signing in afresh for it (the password + code host; its
  user's shell is /bin/sh, so the command itself costs little);
* a forward added and cancelled over the master.

Usage: .venv/bin/python benchmarks/sign_in.py [--runs 20] [--frozen PATH]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cellucid_desktop.remote.master import Master  # noqa: E402
from cellucid_desktop.remote.prompt_broker import PromptBroker, module_wrapper  # noqa: E402
from cellucid_desktop.remote.ssh_command import Forward, HostSpec  # noqa: E402
from tests.helpers import free_port  # noqa: E402
from tests.remote.mfa_sshd import MfaSshd, client_config, known_host_line  # noqa: E402
from tests.remote.sshd import SshLab, keygen  # noqa: E402


def timed(action: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (f"| {name:<44} | {statistics.median(ms):8.1f} | {min(ms):8.1f} | "
            f"{max(ms):8.1f} |")


def relay(program: str, broker: PromptBroker) -> None:
    """One prompt in a fresh session (a session refuses a password asked twice)."""
    done = subprocess.run([program, "(u@h) Password: "], env=broker.session("bench").env(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.stdout == "pw\n", done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--frozen", help="the bundle's cellucid-desktop binary")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sign-in-") as tmp:
        root = Path(tmp)
        (root / "lab").mkdir()
        lab = SshLab(root / "lab").start()
        mfa = MfaSshd(root, "mfa", keygen(root / "mfa_host")).start()
        try:
            with PromptBroker(lambda request: "pw") as broker:
                helpers = [("helper relay: console script", broker.program),
                           ("helper relay: python -m wrapper", str(module_wrapper()))]
                if args.frozen:
                    helpers.append(("helper relay: frozen binary", args.frozen))
                for name, program in helpers:
                    relay(program, broker)  # warm the page cache
                    rows.append(row(name, timed(lambda: relay(program, broker), args.runs)))

            key_host = HostSpec("login", config_file=str(lab.config))
            known = root / "known_hosts"
            known.write_text(known_host_line(mfa))
            config = client_config(root / "ssh_config", known, {"mfa": (mfa.port, mfa.user)},
                                   ["  PubkeyAuthentication no"])
            mfa_host = HostSpec("mfa", config_file=str(config))

            def answer(request) -> str:
                return mfa.password if request.prompt.text.endswith("Password: ") \
                    else mfa.code()

            with PromptBroker(answer) as broker:
                for name, host in (("master sign-in: key-only host", key_host),
                                   ("master sign-in: password + one-time code", mfa_host)):
                    rows.append(row(name, timed(lambda: Master(host, broker).start().close(),
                                                max(3, args.runs // 4))))
                master = Master(mfa_host, broker).start()
                try:
                    rows.append(row("command over the master (`true`)",
                                    timed(lambda: master.run(["true"]), args.runs)))

                    def fresh_ssh() -> None:  # what every command costs without a master
                        fresh = Master(mfa_host, broker).start()
                        fresh.run(["true"])
                        fresh.close()
                    rows.append(row("fresh sign-in per command (password + code)",
                                    timed(fresh_ssh, max(3, args.runs // 4))))

                    def forward_and_cancel() -> None:
                        master.cancel(master.forward(Forward.tcp(free_port(), "127.0.0.1",
                                                                 lab.login.port)))
                    rows.append(row("forward + cancel over the master",
                                    timed(forward_and_cancel, args.runs)))
                finally:
                    master.close()
        finally:
            mfa.stop()
            lab.stop()
    print(f"| {'step':<44} | {'median':>8} | {'min':>8} | {'max':>8} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    print("\n".join(rows))
    print("(milliseconds)")


if __name__ == "__main__":
    main()
