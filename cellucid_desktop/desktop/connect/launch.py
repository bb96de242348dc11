"""The connect dialog's *Open a file on the host* fields, as the back end's types.

Pure translation, no I/O: the form (strings, as a page sends them) becomes a validated
``LaunchPlan``; a ``Listing`` and the remembered ``RemoteFile``s become what the pages
show. Every check stays in remote/ (``LaunchPlan.validated``, ``SlurmOptions``), so
the dialog and ``cellucid-desktop connect --open`` refuse the same things with the same
sentence.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from cellucid_desktop.remote.connections import HostMemory, host_key, spec_from_form
from cellucid_desktop.remote.opening import LaunchPlan, SlurmOptions

if TYPE_CHECKING:
    from cellucid_desktop.remote.connections import RemoteFile
    from cellucid_desktop.remote.remote_files import Listing

SLURM_FIELDS = ("partition", "time", "mem", "account")


def plan_from_form(form: dict[str, Any]) -> LaunchPlan:
    """The plan for the form's fields (``remote_path``, ``run`` = "host" | "slurm",
    ``env``, ``program``, ``slurm_*``, ``slurm_extra`` one sbatch option per line,
    ``keep_running``); SpecError with a sentence."""
    spec = spec_from_form({**form, "where": "host", "remote_socket": ""})
    where = str(form.get("run") or "host")
    slurm = None
    if where == "slurm":
        extra = tuple(line.strip() for line in str(form.get("slurm_extra") or "").splitlines()
                      if line.strip())
        slurm = SlurmOptions(**{f: str(form.get(f"slurm_{f}") or "").strip()
                                for f in SLURM_FIELDS}, extra=extra)
    return LaunchPlan(spec, str(form.get("remote_path") or ""), where=where,
                      env=str(form.get("env") or ""),
                      program=str(form.get("program_open") or "auto"), slurm=slurm,
                      keep_running=bool(form.get("keep_running"))).validated()


def memory_fields(memory: HostMemory) -> dict[str, Any]:
    """A host's remembered choices as the dialog's fields (and its last folders)."""
    return {"env": memory.env, "program_open": memory.program, "run": memory.where,
            **{f"slurm_{f}": getattr(memory.slurm, f) for f in SLURM_FIELDS},
            "slurm_extra": "\n".join(memory.slurm.extra), "folders": list(memory.folders)}


def listing_view(listing: Listing) -> dict[str, Any]:
    return {"ok": True, "path": listing.path, "parent": listing.parent,
            "truncated": listing.truncated,
            "entries": [{"name": e.name, "path": e.path, "kind": e.kind, "size": e.size,
                         "mtime": e.mtime, "openable": e.openable} for e in listing.entries]}


def folder_of(path: str) -> str:
    """The folder a remote file (or Zarr store) is in, to remember for next time."""
    return posixpath.dirname(path.rstrip("/")) or "/"


def file_key(file: RemoteFile) -> str:
    """One string naming a recent remote file (host and path), for pages and the tray."""
    host, path = file.key
    return f"{host}\n{path}"


def file_entry(file: RemoteFile) -> dict[str, Any]:
    return {"key": file_key(file), "label": file.label, "host": host_key(file.host),
            "path": file.path, "where": file.where, "running": file.record is not None,
            "last_used": file.last_used}
