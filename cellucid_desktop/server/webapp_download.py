"""Download and verify the official Cellucid web app from its source (no Flask, no cache).

Every check is one `cellucid` 0.9.5 makes, so a build `cellucid serve` accepts is
accepted here too: the inventory needs HTTP 200, its exact media type and a matching
``Content-Length``; each asset needs HTTP 200, the inventory's media type and size,
and its SHA-256, hashed while it streams to disk, so a short, long or cut body is
refused. Redirects are followed only to https (or loopback http).

This module only answers "are these the published bytes?"; where they are kept, which
build is active and who may fetch at a time is ``webapp_cache``'s job, which calls this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from cellucid_desktop import __version__
from cellucid_desktop.hosts import is_loopback_name
from cellucid_desktop.http_client import READ_ERRORS, InternetClient, Response
from cellucid_desktop.server.webapp_inventory import (
    INVENTORY_CONTENT_TYPE, INVENTORY_NAME, Asset, Inventory, InventoryError,
    extract_build_id, is_normalized_mime, media_type)
from cellucid_desktop.webapp_source import WebAppError

TIMEOUT = 15.0  # seconds per network operation, as cellucid
USER_AGENT = f"cellucid-desktop/{__version__} (web-cache)"
_CHUNK = 256 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class SourceUnreachable(WebAppError):
    """The source could not be reached at all (offline, refused, timed out)."""


class WebAppDownloader:
    """The files of one web-app source, fetched and checked over one keep-alive client."""

    def __init__(self, source_url: str, timeout: float = TIMEOUT) -> None:
        self.source_url = source_url
        self._http = InternetClient(timeout)  # keep-alive across a build's files

    def inventory(self) -> bytes:
        """The raw inventory, served with its exact media type and length."""
        with self._open(INVENTORY_NAME) as response:
            content_type = response.headers.get("Content-Type")
            if content_type != INVENTORY_CONTENT_TYPE:
                raise InventoryError(f"The web build inventory was served as {content_type!r}, "
                                     f"not {INVENTORY_CONTENT_TYPE!r}")
            length = _content_length(response, INVENTORY_NAME)
            chunks: list[bytes] = []
            _stream(response, length, INVENTORY_NAME, chunks.append)
            return b"".join(chunks)

    def asset(self, asset: Asset, target: Path, received: Callable[[int], None]) -> None:
        """Stream one asset to ``target`` while hashing; every check as cellucid's.
        ``received(bytes_so_far)`` follows each chunk; raising from it cancels."""
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
            count = 0
            with target.open("wb") as out:
                def write(chunk: bytes) -> None:
                    nonlocal count
                    digest.update(chunk)
                    out.write(chunk)
                    count += len(chunk)
                    received(count)

                _stream(response, length, asset.path, write)
        if digest.hexdigest() != asset.sha256:
            raise InventoryError(f"The web build file {asset.path!r} failed its SHA-256 check")

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
                raise SourceUnreachable(f"Could not reach the Cellucid web app at "
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


def copy_if_verified(source: Path | None, target: Path, asset: Asset) -> bool:
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
