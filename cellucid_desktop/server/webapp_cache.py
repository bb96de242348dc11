"""Download, verify and cache the official Cellucid web app (no Flask here).

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
"""

from __future__ import annotations

import hashlib
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
from urllib.parse import quote, urljoin, urlsplit

from filelock import FileLock, Timeout

from cellucid_desktop import __version__, paths
from cellucid_desktop.atomic_files import atomic_write_json
from cellucid_desktop.hosts import is_loopback_name
from cellucid_desktop.http_client import READ_ERRORS, InternetClient, Response
from cellucid_desktop.server.webapp_inventory import (
    INVENTORY_CONTENT_TYPE, INVENTORY_NAME, Asset, Inventory, InventoryError,
    extract_build_id, is_normalized_mime, media_type, parse_inventory)
from cellucid_desktop.webapp_source import DEFAULT_SOURCE_URL, WebAppError, validate_source_url

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 24 * 3600.0  # seconds between automatic checks for a newer build
TIMEOUT = 15.0  # seconds per network operation, as cellucid
LOCK_TIMEOUT = 600.0  # how long a fetch waits for another process's fetch
USER_AGENT = f"cellucid-desktop/{__version__} (web-cache)"
STATE_NAME = "state.json"
_GENERATION = re.compile(r"gen-[0-9a-f]{32}")
_CHUNK = 256 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

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


class _Unreachable(WebAppError):
    """The source could not be reached at all (offline, refused, timed out)."""


class WebAppCache:
    """The web-app cache of one folder and one source URL.

    Safe to share between threads; several processes may use the same folder.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, *,
                 source_url: str = DEFAULT_SOURCE_URL, timeout: float = TIMEOUT) -> None:
        self.source_url = validate_source_url(source_url)
        self.root = Path(root) if root is not None else paths.cache_dir() / "webapp"
        self.timeout = timeout
        self._http = InternetClient(timeout)  # keep-alive across a build's files
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
                    inventory = parse_inventory(self._download_inventory())
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
                if not _copy_if_verified(reusable.get(asset.sha256), target, asset):
                    self._download_asset(asset, target, done, total, report)
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
        if isinstance(exc, _Unreachable):
            return f"{reason}; check the internet connection and try again (the built-in " \
                   "viewer works offline)."
        return f"{reason}; try again later (the built-in viewer still works)."

    def _open(self, path: str) -> Response:
        """A streamed 200 answer for ``path`` of the source; redirects are followed only
        to https (or loopback http): the hashes that vouch for the build are only as
        trustworthy as the channel the inventory came over."""
        url = f"{self.source_url}/{quote(path, safe='/-._~')}"
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = self._http.get(url, {"User-Agent": USER_AGENT})
            except OSError as exc:
                detail = getattr(exc, "strerror", None) or str(exc)
                raise _Unreachable(f"Could not reach the Cellucid web app at "
                                   f"{self.source_url} ({detail})") from None
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or not location:
                break
            response.release_conn()
            url = urljoin(url, location)
            parts = urlsplit(url)
            if parts.scheme != "https" and not (
                    parts.scheme == "http" and is_loopback_name(parts.hostname or "")):
                raise WebAppError(f"The web app source redirected to {url}, which is not "
                                  "https, so it was refused")
        else:
            raise WebAppError(f"The web app source redirected more than {MAX_REDIRECTS} "
                              "times; check the source URL")
        if response.status != 200:
            response.release_conn()
            raise WebAppError(f"{url} answered HTTP {response.status} instead of the web "
                              "build file")
        return response

    def _download_inventory(self) -> bytes:
        with self._open(INVENTORY_NAME) as response:
            content_type = response.headers.get("Content-Type")
            if content_type != INVENTORY_CONTENT_TYPE:
                raise InventoryError(f"The web build inventory was served as {content_type!r}, "
                                     f"not {INVENTORY_CONTENT_TYPE!r}")
            length = _content_length(response, INVENTORY_NAME)
            chunks: list[bytes] = []
            _stream(response, length, INVENTORY_NAME, chunks.append)
            return b"".join(chunks)

    def _download_asset(self, asset: Asset, target: Path, done: int, total: int,
                        report: ProgressCallback) -> None:
        """Stream one asset to ``target`` while hashing; every check as cellucid's."""
        with self._open(asset.path) as response:
            content_type = response.headers.get("Content-Type")
            if not is_normalized_mime(content_type) or \
                    media_type(content_type) != media_type(asset.content_type):
                raise InventoryError(f"The web build file {asset.path!r} was served as "
                                     f"{content_type!r}, not {asset.content_type!r}")
            length = _content_length(response, asset.path)
            if length != asset.size:
                raise InventoryError(f"The web build file {asset.path!r} is {length} bytes, "
                                     f"the inventory says {asset.size}")
            digest = hashlib.sha256()
            received = 0
            with target.open("wb") as out:
                def write(chunk: bytes) -> None:
                    nonlocal received
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    report(done + received, total, asset.path)
                    self._set_status(done_bytes=done + received)

                _stream(response, length, asset.path, write)
        if digest.hexdigest() != asset.sha256:
            raise InventoryError(f"The web build file {asset.path!r} failed its SHA-256 check")

    def _set_status(self, **changes: object) -> None:
        with self._status_lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]


def verify_generation(directory: Path, inventory: Inventory) -> None:
    """Every declared file present with its size and SHA-256, nothing else, no links,
    and ``index.html`` stamped with the inventory's build id; InventoryError if not."""
    expected = {INVENTORY_NAME, *inventory.by_path}
    found: set[str] = set()
    for path in directory.rglob("*"):
        if path.is_symlink():
            raise InventoryError(f"The cached web app contains a link: {path.name}")
        if path.is_file():
            found.add(path.relative_to(directory).as_posix())
    if found != expected:
        raise InventoryError("The cached web app's files differ from its inventory "
                             f"(missing {sorted(expected - found)}, extra {sorted(found - expected)})")
    if (directory / INVENTORY_NAME).read_bytes() != inventory.raw:
        raise InventoryError("The cached web app's inventory changed on disk")
    for asset in inventory.assets:
        check_asset_bytes(asset, (directory / asset.path).read_bytes())
    if extract_build_id((directory / "index.html").read_bytes()) != inventory.build_id:
        raise InventoryError("The web build's index.html names another build than its "
                             "inventory")


def check_asset_bytes(asset: Asset, data: bytes) -> None:
    """InventoryError unless ``data`` has the declared size and SHA-256."""
    if len(data) != asset.size or hashlib.sha256(data).hexdigest() != asset.sha256:
        raise InventoryError(f"The web app file {asset.path!r} does not match its inventory")


def _content_length(response: Response, path: str) -> int:
    value = response.headers.get("Content-Length")
    if not isinstance(value, str) or not value.isdecimal():
        raise InventoryError(f"The web build file {path!r} came without a valid Content-Length")
    return int(value)


def _stream(response: Response, length: int, path: str,
            sink: Callable[[bytes], None]) -> None:
    """Read exactly ``length`` bytes into ``sink``; a short or long body is refused."""
    received = 0
    try:
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if received > length:
                break
            sink(chunk)
    except READ_ERRORS as exc:
        raise InventoryError(f"The download of {path!r} broke off ({exc.__class__.__name__})") \
            from None
    if received != length:
        raise InventoryError(f"The download of {path!r} was {received} bytes, its "
                             f"Content-Length says {length}")


def _copy_if_verified(source: Path | None, target: Path, asset: Asset) -> bool:
    """Reuse an identical file from the previous generation instead of downloading it."""
    if source is None:
        return False
    try:
        data = source.read_bytes()
        check_asset_bytes(asset, data)
    except (OSError, WebAppError):
        return False
    target.write_bytes(data)
    return True


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
