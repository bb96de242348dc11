"""What a remote launch may choose, checked in one place: where the server runs, which
program serves, and the environment line run before it.

Both a ``LaunchPlan`` (what is opened now) and a host's ``HostMemory`` (what is offered
next time) hold these choices, so both check them here and say the same sentence.
"""

from __future__ import annotations

from cellucid_desktop.remote.ssh_command import SpecError

WHERE = ("host", "slurm")
PROGRAMS = ("auto", "cellucid-desktop", "cellucid")


def check_where(where: str) -> str:
    if where not in WHERE:
        raise SpecError(f"Where to run the server must be one of {', '.join(WHERE)}")
    return where


def check_program(program: str) -> str:
    if program not in PROGRAMS:
        raise SpecError(f"The server program must be one of {', '.join(PROGRAMS)}")
    return program


def check_env_line(env: str) -> str:
    """The environment line without surrounding blanks. It is shell text the remote login
    shell runs as one line: a newline or NUL anywhere in it is refused, not trimmed."""
    if "\n" in env or "\0" in env:
        raise SpecError("The environment line must be a single line, e.g. "
                        "module load python; source ~/venv/bin/activate")
    return env.strip()
