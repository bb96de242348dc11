"""The built-in viewer's static files: `/` is its page, `/viewer/<asset>` its modules.

Only regular files inside the package's `viewer/static` folder are served, with an
explicit content type (ES modules are refused by browsers under a wrong one), a
strong ETag and `Cache-Control: no-cache`, so a new package version is picked up at
once while unchanged files still answer 304.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_file
from werkzeug.security import safe_join

from cellucid_desktop.server.store import text_response

STATIC_DIR = Path(__file__).resolve().parent.parent / "viewer" / "static"

CONTENT_TYPES = {
    ".html": "text/html",  # Flask adds "; charset=utf-8" to text types
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}

bp = Blueprint("viewer_assets", __name__)


def _asset_path(asset: str) -> Path | None:
    """The file for a request path, or None when it is not a known file of ours."""
    joined = safe_join(str(STATIC_DIR), asset)
    if joined is None:
        return None
    path = Path(joined)
    if path.suffix not in CONTENT_TYPES or not path.is_file():
        return None
    if STATIC_DIR not in path.resolve().parents:  # a symlink pointing out of the folder
        return None
    return path


def _send(path: Path) -> Response:
    response = send_file(path, mimetype=CONTENT_TYPES[path.suffix], etag=True,
                         conditional=True, max_age=None)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/")
def index() -> Response:
    """The viewer page; it reads its dataset and view from the query string."""
    return _send(STATIC_DIR / "index.html")


@bp.get("/viewer/<path:asset>")
def asset(asset: str) -> Response:
    path = _asset_path(asset)
    if path is None:
        return text_response(404, f"Not found: viewer/{asset}")
    return _send(path)
