"""A small command signing in with the CLI's terminal front end, for the pty tests:
``python -m tests.remote.sign_in_cli SSH_CONFIG ALIAS`` prints the remote user name."""

from __future__ import annotations

import sys

from cellucid_desktop.cli.terminal_prompts import TerminalPrompts
from cellucid_desktop.remote.master import Master
from cellucid_desktop.remote.prompt_broker import PromptBroker
from cellucid_desktop.remote.ssh_command import HostSpec
from cellucid_desktop.remote.ssh_process import SshError


def main(config: str, alias: str) -> int:
    with PromptBroker(TerminalPrompts()) as broker:
        try:
            master = Master(HostSpec(alias, config_file=config), broker).start()
        except SshError as exc:
            print(f"error: {exc}")
            return 1
        try:
            print("remote user:", master.run(["id", "-un"]).stdout.strip())
        finally:
            master.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(*sys.argv[1:]))
    except KeyboardInterrupt:
        print("Interrupted by user", file=sys.stderr)
        sys.exit(130)
