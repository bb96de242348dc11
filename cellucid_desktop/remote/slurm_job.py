"""A server in a Slurm job: the options the user chose per host, and the job's life.

``SlurmOptions`` holds partition, time, memory, account and extra ``sbatch`` options;
``validated()`` checks each, and extra options are accepted only from an allow-list,
as ssh's ``-o`` options are (``ssh_command.ALLOWED_OPTIONS``): nothing that changes
where the job's output goes, what it runs, who it runs as, or whether it runs at all.
The values reach ``sbatch`` as single argv words (``--partition=VALUE``), quoted by
``remote_shell`` like every other remote word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cellucid_desktop.remote.ssh_command import SpecError

# sbatch long options a user may add (``--name=value`` or a bare ``--flag`` where the
# option takes no value). Left out on purpose: --output/--error/--input/--chdir/
# --job-name/--parsable (ours: the launcher reads them), --wrap (the job script is
# ours), --export/--get-user-env (the job inherits the environment line's setup),
# --uid/--gid, --array, --hold, --test-only, --wait, --clusters (the job must be where
# squeue and scancel look), --dependency (a job that cannot start would wait forever).
ALLOWED_SBATCH = frozenset({
    "qos", "gres", "gpus", "gpus-per-node", "gpus-per-task", "cpus-per-task",
    "cpus-per-gpu", "mem-per-cpu", "mem-per-gpu", "constraint", "nodelist", "exclude",
    "reservation", "exclusive", "ntasks", "ntasks-per-node", "nodes", "time-min",
    "licenses", "comment", "mail-type", "mail-user", "tmp", "begin", "deadline", "nice",
    "priority", "requeue", "no-requeue", "signal", "wckey", "network", "core-spec",
    "threads-per-core", "hint", "switches", "distribution", "oversubscribe",
})
FLAG_ONLY = frozenset({"exclusive", "requeue", "no-requeue", "oversubscribe"})

_NAME = re.compile(r"^[A-Za-z0-9_.,-]{1,128}$")           # partitions (a,b), accounts
_TIME = re.compile(r"^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}"
                   r"(?::\d{1,2}(?::\d{1,2})?)?|UNLIMITED|INFINITE)$", re.I)
_MEM = re.compile(r"^\d+(?:[KMGT]B?)?$", re.I)
_EXTRA = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.+))?$")


def _plain(label: str, value: str, pattern: re.Pattern[str], example: str) -> str:
    text = value.strip()
    if text and not pattern.match(text):
        raise SpecError(f"{label} {text!r} is not valid for Slurm; e.g. {example}")
    return text


def check_sbatch_arg(arg: str) -> str:
    """One extra ``sbatch`` option from the allow-list, as ``--name=value`` or
    ``--flag``; SpecError with a sentence otherwise."""
    text = arg.strip()
    match = _EXTRA.match(text)
    if not match or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise SpecError(f"Extra sbatch option {arg!r} should look like --name=value, "
                        "e.g. --gres=gpu:1 or --qos=interactive")
    name, value = match.groups()
    if name not in ALLOWED_SBATCH:
        raise SpecError(f"The sbatch option --{name} is not allowed here (the app sets "
                        "where the job's output goes and what it runs); allowed are e.g. "
                        "--qos, --gres, --cpus-per-task, --constraint, --reservation")
    if value is None and name not in FLAG_ONLY:
        raise SpecError(f"The sbatch option --{name} needs a value: --{name}=VALUE")
    if value is not None and name in FLAG_ONLY and name != "exclusive":
        raise SpecError(f"The sbatch option --{name} takes no value")
    return text


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how long the job runs; remembered per host (``connections.py``)."""

    partition: str = ""
    time: str = ""
    mem: str = ""
    account: str = ""
    extra: tuple[str, ...] = ()  # sbatch args, allow-listed (check_sbatch_arg)

    def validated(self) -> SlurmOptions:
        """A copy with every field checked and trimmed; raises SpecError."""
        return SlurmOptions(
            partition=_plain("Partition", self.partition, _NAME, "debug or gpu,cpu"),
            time=_plain("Time limit", self.time, _TIME, "30, 1:00:00 or 1-12:00"),
            mem=_plain("Memory", self.mem, _MEM, "16G or 4000M"),
            account=_plain("Account", self.account, _NAME, "lab_account"),
            extra=tuple(check_sbatch_arg(a) for a in self.extra if a.strip()))

    def sbatch_args(self) -> list[str]:
        """The chosen options as sbatch argv words (validated first)."""
        spec = self.validated()
        words = [f"--{name}={value}" for name, value in (
            ("partition", spec.partition), ("time", spec.time), ("mem", spec.mem),
            ("account", spec.account)) if value]
        return words + list(spec.extra)

    def to_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "time": self.time, "mem": self.mem,
                "account": self.account, "extra": list(self.extra)}

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> SlurmOptions:
        """From saved JSON; SpecError (or TypeError) if it no longer validates."""
        raw = raw or {}
        return cls(str(raw.get("partition") or ""), str(raw.get("time") or ""),
                   str(raw.get("mem") or ""), str(raw.get("account") or ""),
                   tuple(str(a) for a in raw.get("extra") or ())).validated()
