"""The Cellucid web build's published contract: source URL, inventory and build stamp.

Pure validation, no I/O. The rules are cellucid 0.9.5's (``web_cache.py``), so a
build that `cellucid serve` accepts is accepted here and nothing else is:

* the source URL (checked by webapp_source.validate_source_url);
* ``cellucid-web-assets.json`` lists every file with its size, SHA-256 and the
  content type to serve it with; paths are portable relative POSIX paths;
* ``index.html`` carries exactly one ``<meta name="cellucid-web-build-id">`` equal to
  the inventory's ``build_id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from cellucid_desktop.webapp_source import WebAppError

INVENTORY_NAME = "cellucid-web-assets.json"
INVENTORY_CONTENT_TYPE = "application/json; charset=utf-8"
BUILD_META_NAME = "cellucid-web-build-id"
MAX_BUILD_ID_LENGTH = 200

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"
_MIME = re.compile(rf"{_TOKEN}/{_TOKEN}(?:; {_TOKEN}={_TOKEN})*")
_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)),
                              *(f"LPT{n}" for n in range(1, 10))})


class InventoryError(WebAppError, ValueError):
    """A published build that breaks the inventory contract."""


@dataclass(frozen=True)
class Asset:
    """One file of the build, as the inventory declares it."""

    path: str
    sha256: str
    size: int
    content_type: str


@dataclass(frozen=True)
class Inventory:
    """A parsed ``cellucid-web-assets.json``; ``raw`` is kept byte-exact for the cache."""

    build_id: str
    assets: tuple[Asset, ...]
    raw: bytes = field(repr=False)
    by_path: dict[str, Asset] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_path", {asset.path: asset for asset in self.assets})

    @property
    def total_bytes(self) -> int:
        return sum(asset.size for asset in self.assets)


def validate_asset_path(path: object) -> str:
    """A relative, portable POSIX path with no dot segments; InventoryError otherwise."""
    if not isinstance(path, str) or not path:
        raise InventoryError("The web build lists an asset with an empty path.")
    bad = (path.startswith("/") or any(c in '\\?#<>:"|*' for c in path)
           or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in path))
    parts = path.split("/")
    if bad or any(p in ("", ".", "..") or p.endswith(".")
                  or p.split(".", 1)[0].upper() in _WINDOWS_DEVICES for p in parts):
        raise InventoryError(f"The web build lists an unsafe asset path {path!r}.")
    if path == INVENTORY_NAME:
        raise InventoryError("The web build inventory lists itself as an asset.")
    return path


def parse_inventory(payload: bytes) -> Inventory:
    """Parse the one accepted inventory schema (version 1); InventoryError otherwise."""
    try:
        raw = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InventoryError("The web build inventory is not valid UTF-8 JSON.") from None
    if not isinstance(raw, dict) or set(raw) != {"version", "build_id", "assets"}:
        raise InventoryError("The web build inventory must hold exactly version, build_id "
                             "and assets.")
    if type(raw["version"]) is not int or raw["version"] != 1:
        raise InventoryError("The web build inventory has an unknown version; update "
                             "Cellucid Desktop.")
    build_id = _check_build_id(raw["build_id"], "The web build inventory")
    items = raw["assets"]
    if not isinstance(items, list) or not items:
        raise InventoryError("The web build inventory lists no assets.")
    assets = tuple(_parse_asset(item) for item in items)
    paths = [asset.path for asset in assets]
    if paths != sorted(paths) or len(set(paths)) != len(paths):
        raise InventoryError("The web build inventory paths must be sorted and unique.")
    if "index.html" not in paths:
        raise InventoryError("The web build inventory has no index.html.")
    return Inventory(build_id=build_id, assets=assets, raw=bytes(payload))


def _parse_asset(item: object) -> Asset:
    if not isinstance(item, dict) or set(item) != {"path", "sha256", "bytes", "content_type"}:
        raise InventoryError("Every web build asset must hold exactly path, sha256, bytes "
                             "and content_type.")
    path = validate_asset_path(item["path"])
    sha = item["sha256"]
    size = item["bytes"]
    content_type = item["content_type"]
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise InventoryError(f"The web build asset {path!r} has an invalid SHA-256.")
    if type(size) is not int or size < 0:
        raise InventoryError(f"The web build asset {path!r} has an invalid size.")
    if not is_normalized_mime(content_type):
        raise InventoryError(f"The web build asset {path!r} has an invalid content type.")
    return Asset(path=path, sha256=sha, size=size, content_type=content_type)


def is_normalized_mime(value: object) -> bool:
    """Lower-case ``type/subtype`` with ``"; "`` before each parameter, as cellucid requires."""
    return isinstance(value, str) and _MIME.fullmatch(value) is not None


def media_type(content_type: str) -> str:
    """``text/html; charset=utf-8`` → ``text/html``."""
    return content_type.split(";", 1)[0].strip().lower()


def _check_build_id(value: object, where: str) -> str:
    if (not isinstance(value, str) or not value or value != value.strip()
            or len(value) > MAX_BUILD_ID_LENGTH):
        raise InventoryError(f"{where} has an invalid build id.")
    return value


class _BuildMetaParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        names = [value for key, value in attrs if key == "name"]
        if BUILD_META_NAME not in names:
            return
        contents = [value for key, value in attrs if key == "content"]
        if names != [BUILD_META_NAME] or len(contents) != 1 or contents[0] is None:
            raise InventoryError("The web build's index.html has a malformed build-id meta tag.")
        self.ids.append(contents[0])


def extract_build_id(index_html: bytes) -> str:
    """The one build stamp in ``index.html``; InventoryError if absent, repeated or bad."""
    try:
        text = index_html.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError("The web build's index.html is not valid UTF-8.") from None
    parser = _BuildMetaParser()
    parser.feed(text)
    parser.close()
    if len(parser.ids) != 1:
        raise InventoryError("The web build's index.html must carry exactly one "
                             f"<meta name=\"{BUILD_META_NAME}\"> tag.")
    return _check_build_id(parser.ids[0], "The web build's index.html")
