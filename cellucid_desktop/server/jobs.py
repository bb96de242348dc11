"""Long analyses run in the background: the viewer polls their progress and may cancel.

An analysis reads every stored value of a dataset, so at most ``slots`` run at once
(their buffers bound the server's memory); the others wait, reported as running at
progress 0 with a message saying so. Requests that wait for their answer take a slot the
same way. Finished jobs are kept for a while so a viewer can fetch the result, then
forgotten (the oldest first beyond ``keep``).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cellucid_desktop.data.errors import DatasetError, TransportError
from cellucid_desktop.data.memory import return_freed_memory

log = logging.getLogger(__name__)

WAITING = "Waiting for another analysis to finish"


class Cancelled(Exception):
    """The job was cancelled; raised inside the work by ``Progress``."""


class Progress:
    """What a job's work calls: ``progress(fraction, message)``, which raises Cancelled
    once the job is cancelled (so work stops at its next step)."""

    def __init__(self, job: Job | None = None) -> None:
        self._job = job

    def __call__(self, fraction: float, message: str | None = None) -> None:
        job = self._job
        if job is None:
            return
        if job.cancel_requested.is_set():
            raise Cancelled()
        job.progress = min(1.0, max(job.progress, float(fraction)))
        if message is not None:
            job.message = message

    def part(self, start: float, stop: float, message: str | None = None,
             ) -> Callable[[float], None]:
        """A progress callback mapping 0..1 onto [start, stop] of this job."""
        if message is not None:
            self(start, message)
        return lambda fraction: self(start + (stop - start) * fraction)


@dataclass
class Job:
    id: str
    state: str = "running"  # running | done | failed | cancelled
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    finished_at: float | None = None

    def describe(self) -> dict:
        return {"state": self.state, "progress": round(self.progress, 4),
                "message": self.message, "result": self.result if self.state == "done" else None,
                "error": self.error}


Work = Callable[[Progress], Any]


class JobRunner:
    """Runs analyses in the caller's thread (``run``) or a thread of their own
    (``submit``), at most ``slots`` at a time."""

    def __init__(self, slots: int = 1, keep: int = 32) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._keep = keep
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()

    def run(self, work: Work) -> Any:
        """Wait for a slot, then run ``work`` here and return its result."""
        with self._slots:
            try:
                return work(Progress())
            finally:
                return_freed_memory()

    def submit(self, work: Work, message: str = "") -> Job:
        job = Job(id=secrets.token_urlsafe(12), message=message)
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, work, message), daemon=True,
                         name=f"analysis-{job.id[:6]}").start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None:
            job.cancel_requested.set()
        return job

    def _run(self, job: Job, work: Work, message: str) -> None:
        while not self._slots.acquire(timeout=0.1):
            job.message = WAITING
            if job.cancel_requested.is_set():
                self._finish(job, "cancelled", message="Cancelled")
                return
        job.message = message
        try:
            result = work(Progress(job))
        except Cancelled:
            self._finish(job, "cancelled", message="Cancelled")
        except (DatasetError, TransportError) as exc:  # each a sentence for the user
            self._finish(job, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the viewer, logged in full
            log.exception("Analysis %s failed", job.id)
            self._finish(job, "failed", error=f"The analysis failed ({type(exc).__name__}); "
                                              "see the log for details")
        else:
            job.result = result
            self._finish(job, "done", message="Done")
        finally:
            return_freed_memory()  # an analysis's blocks are freed: give the pages back
            self._slots.release()

    def _finish(self, job: Job, state: str, *, message: str | None = None,
                error: str | None = None) -> None:
        if state == "done":
            job.progress = 1.0
        if message is not None:
            job.message = message
        job.error = error
        job.finished_at = time.monotonic()
        job.state = state  # last: a poller seeing the state sees the rest too

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.finished_at is not None]
        for key in finished[:max(0, len(self._jobs) - self._keep)]:
            del self._jobs[key]
