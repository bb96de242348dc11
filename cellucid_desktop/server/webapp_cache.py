"""Keep the verified Cellucid web app on disk and decide when to fetch it (no Flask here).

Layout of ``paths.cache_dir()/webapp/``::

    state.json        the active generation, its source, build id, fetch and check times
    gen-<hex>/        the active build: every inventory asset plus the inventory itself
    .staging-<hex>/   a download in progress (or left by a crash: removed next time)
    .lock             serialises fetches across threads and app processes

A fetch downloads into a fresh staging folder, checks every file's size, media type
and SHA-256 and the build stamp in ``index.html``, renames the folder to
``gen-<hex>`` and only then replaces ``state.json`` (``os.replace``, atomic). So the
active build is always complete and verified, and a failed, partial or interrupted
download leaves the previous one exactly as it was. The old generation is deleted
once the new one is active.

Unlike `cellucid serve`, which downloads the whole build at every start and fails
offline, a verified cache is reused: :meth:`WebAppCache.ensure` asks the source
again only when the last successful check is older than a day, and falls back to
the cache when the source cannot be reached.

The HTTP side (what is downloaded and how each file is checked) is
``webapp_download``'s; this module owns the folder, its lock and its lifecycle.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from filelock import FileLock, Timeout

from cellucid_desktop import paths
from cellucid_desktop.atomic_files import atomic_write_json
from cellucid_desktop.server.webapp_download import (
    TIMEOUT, SourceUnreachable, WebAppDownloader, copy_if_verified, verify_generation)
from cellucid_desktop.server.webapp_inventory import (
    INVENTORY_NAME, Inventory, extract_build_id, parse_inventory)
from cellucid_desktop.webapp_source import DEFAULT_SOURCE_URL, WebAppError, validate_source_url

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 24 * 3600.0  # seconds between automatic checks for a newer build
LOCK_TIMEOUT = 600.0  # how long a fetch waits for another process's fetch
STATE_NAME = "state.json"
_GENERATION = re.compile(r"gen-[0-9a-f]{32}")

ProgressCallback = Callable[[int, int, str], None]
"""``progress(done_bytes, total_bytes, current_path)``; raising from it cancels the fetch."""

_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Build:
    """One cached, complete generation of the web app."""

    directory: Path
    inventory: Inventory
    source_url: str
    fetched_at: float
    checked_at: float

    @property
    def build_id(self) -> str:
        return self.inventory.build_id


@dataclass(frozen=True)
class FetchStatus:
    """What the UI shows while polling: ``state`` is idle, checking, downloading,
    ready or failed; ``message`` is the user sentence of the last problem."""

    state: str = "idle"
    done_bytes: int = 0
    total_bytes: int = 0
    current_path: str = ""
    build_id: str | None = None
    message: str = ""


class WebAppCache:
    """The web-app cache of one folder and one source URL.

    Safe to share between threads; several processes may use the same folder.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *,
                 source_url: str = DEFAULT_SOURCE_URL, timeout: float = TIMEOUT) -> None:
        self.source_url = validate_source_url(source_url)
        self.root = Path(root) if root is not None else paths.cache_dir() / "webapp"
        self.timeout = timeout
        self._download = WebAppDownloader(self.source_url, timeout)
        self._status = FetchStatus()
        self._status_lock = threading.Lock()
        self._worker: threading.Thread | None = None

    # -- reading the cache ---------------------------------------------------------

    def current(self) -> Build | None:
        """The active build, from any source, without hashing; None if none or damaged."""
        state = self._read_state()
        if state is None:
            return None
        directory = self.root / state["generation"]
        try:
            inventory = parse_inventory((directory / INVENTORY_NAME).read_bytes())
            if extract_build_id((directory / "index.html").read_bytes()) != inventory.build_id:
                return None
        except (OSError, WebAppError):
            return None
        return Build(directory, inventory, state["source_url"], state["fetched_at"],
                     state["checked_at"])

    def cached_build(self) -> Build | None:
        """The active build if it came from this cache's source and every file verifies."""
        build = self.current()
        if build is None or build.source_url != self.source_url:
            return None
        return self._verified(build)

    def status(self) -> FetchStatus:
        """A snapshot of the current or last fetch, for a UI to poll."""
        with self._status_lock:
            return self._status

    # -- fetching --------------------------------------------------------------------

    def ensure(self, progress: ProgressCallback | None = None, *,
               max_age: float = REFRESH_INTERVAL) -> Build:
        """A verified build: the cache if checked within ``max_age`` seconds, else a
        fresh check; offline or on a failed check the cache is used if there is one.

        Raises WebAppError (a user sentence) only when there is no usable cache.
        """
        build = self.cached_build()
        if build is not None and 0 <= time.time() - build.checked_at < max_age:
            self._set_status(state="ready", build_id=build.build_id, message="",
                             done_bytes=build.inventory.total_bytes,
                             total_bytes=build.inventory.total_bytes, current_path="")
            return build
        try:
            return self.fetch(progress)
        except WebAppError as exc:
            if build is None:
                raise
            log.warning("Using the cached web app: %s", exc)
            self._set_status(state="ready", build_id=build.build_id, message=str(exc))
            return build

    def fetch(self, progress: ProgressCallback | None = None) -> Build:
        """Check the source now and install its build if it differs from the cache.

        Raises WebAppError with a user sentence; the cache is then left as it was.
        """
        report = progress or (lambda done, total, path: None)
        self._set_status(state="checking", done_bytes=0, total_bytes=0, current_path="",
                         message="")
        try:
            with self._exclusive():
                self._remove_leftovers()
                active = self._verified(self.current())
                try:
                    inventory = parse_inventory(self._download.inventory())
                    if (active is not None and active.source_url == self.source_url
                            and active.inventory.raw == inventory.raw):
                        build = self._write_state(replace(active, checked_at=time.time()))
                    else:
                        build = self._install(inventory, active, report)
                except WebAppError as exc:
                    raise WebAppError(self._failure_sentence(exc, active)) from exc
        except BaseException as exc:
            message = str(exc) if isinstance(exc, WebAppError) else \
                "The web app download was interrupted; the cache was left as it was."
            self._set_status(state="failed", message=message)
            raise
        total = build.inventory.total_bytes
        report(total, total, "")
        self._set_status(state="ready", done_bytes=total, total_bytes=total, current_path="",
                         build_id=build.build_id, message="")
        return build

    def start_fetch(self, progress: ProgressCallback | None = None, *,
                    force: bool = False) -> threading.Thread:
        """Run :meth:`ensure` (or :meth:`fetch` with ``force``) in a background thread;
        poll :meth:`status` for progress and the outcome. A running one is reused."""
        with self._status_lock:
            if self._worker is not None and self._worker.is_alive():
                return self._worker

            def work() -> None:
                try:
                    self.fetch(progress) if force else self.ensure(progress)
                except WebAppError:
                    pass  # already in status()

            self._worker = threading.Thread(target=work, name="webapp-fetch", daemon=True)
            self._worker.start()
            return self._worker

    def clear(self) -> None:
        """Remove every cached generation (the built-in viewer is unaffected)."""
        with self._exclusive():
            (self.root / STATE_NAME).unlink(missing_ok=True)
            self._remove_leftovers()
        self._set_status(state="idle", done_bytes=0, total_bytes=0, current_path="",
                         build_id=None, message="")

    # -- internals ---------------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One fetch or clear at a time per folder: a thread lock, then a file lock."""
        self.root.mkdir(parents=True, exist_ok=True)
        key = self.root.resolve()
        with _PROCESS_LOCKS_GUARD:
            thread_lock = _PROCESS_LOCKS.setdefault(key, threading.Lock())
        if not thread_lock.acquire(timeout=LOCK_TIMEOUT):
            raise WebAppError("Another download of the Cellucid web app is still running; "
                              "try again when it has finished.")
        try:
            with FileLock(str(self.root / ".lock"), timeout=LOCK_TIMEOUT, thread_local=False):
                yield
        except Timeout:
            raise WebAppError("Another Cellucid Desktop is still downloading the web app; "
                              "try again when it has finished.") from None
        finally:
            thread_lock.release()

    def _remove_leftovers(self) -> None:
        """Staging folders of crashed fetches and generations nothing points at."""
        state = self._read_state()
        keep = state["generation"] if state else None
        for entry in self.root.iterdir():
            name = entry.name
            if name.startswith(".staging-") or name.startswith(".state-") or (
                    _GENERATION.fullmatch(name) and name != keep):
                _remove(entry)

    def _verified(self, build: Build | None) -> Build | None:
        if build is None:
            return None
        try:
            verify_generation(build.directory, build.inventory)
        except (OSError, WebAppError) as exc:
            log.warning("Cached web app failed verification: %s", exc)
            return None
        return build

    def _read_state(self) -> dict | None:
        try:
            state = json.loads((self.root / STATE_NAME).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        valid = (isinstance(state, dict) and state.get("version") == 1
                 and isinstance(state.get("generation"), str)
                 and _GENERATION.fullmatch(state["generation"]) is not None
                 and isinstance(state.get("source_url"), str)
                 and all(isinstance(state.get(k), int | float) for k in ("fetched_at", "checked_at")))
        return state if valid else None

    def _write_state(self, build: Build) -> Build:
        """Point ``state.json`` at ``build`` in one atomic replace."""
        document = {"version": 1, "generation": build.directory.name,
                    "source_url": build.source_url, "build_id": build.build_id,
                    "fetched_at": build.fetched_at, "checked_at": build.checked_at}
        atomic_write_json(self.root / STATE_NAME, document)
        return build

    def _install(self, inventory: Inventory, active: Build | None,
                 report: ProgressCallback) -> Build:
        """Stage, verify, activate; the previous generation is removed afterwards."""
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        generation = self.root / f"gen-{uuid.uuid4().hex}"
        reusable = ({a.sha256: active.directory / a.path for a in active.inventory.assets}
                    if active is not None else {})
        total, done = inventory.total_bytes, 0
        try:
            for asset in inventory.assets:
                target = stage / asset.path
                target.parent.mkdir(parents=True, exist_ok=True)
                self._set_status(state="downloading", current_path=asset.path,
                                 done_bytes=done, total_bytes=total)
                if not copy_if_verified(reusable.get(asset.sha256), target, asset):
                    self._download.asset(asset, target,
                                         self._asset_progress(report, done, total, asset.path))
                done += asset.size
                report(done, total, asset.path)
            (stage / INVENTORY_NAME).write_bytes(inventory.raw)
            verify_generation(stage, inventory)
            os.rename(stage, generation)
            now = time.time()
            build = self._write_state(Build(generation, inventory, self.source_url, now, now))
        except BaseException:
            _remove(stage)
            _remove(generation)
            raise
        if active is not None:
            _remove(active.directory)
        log.info("Installed Cellucid web app build %s from %s", inventory.build_id,
                 self.source_url)
        return build

    def _failure_sentence(self, exc: WebAppError, active: Build | None) -> str:
        reason = str(exc).rstrip(".")
        if active is not None:
            return f"{reason}; the web app downloaded earlier stays in use."
        if isinstance(exc, SourceUnreachable):
            return f"{reason}; check the internet connection and try again (the built-in " \
                   "viewer works offline)."
        return f"{reason}; try again later (the built-in viewer still works)."

    def _asset_progress(self, report: ProgressCallback, done: int, total: int,
                        path: str) -> Callable[[int], None]:
        """Turn one asset's received bytes into whole-build progress and status."""
        def received(count: int) -> None:
            report(done + count, total, path)
            self._set_status(done_bytes=done + count)
        return received

    def _set_status(self, **changes: object) -> None:
        with self._status_lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]


def _remove(path: Path) -> None:
    """Delete a file or folder we own; a failure (e.g. a file open on Windows) is logged
    and retried by the next fetch's clean-up."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        log.warning("Could not remove %s: %s", path, exc)
