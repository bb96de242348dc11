"""The viewer's files over real HTTP: page at `/`, modules under `/viewer/`, nothing else."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from email.message import Message

import pytest

from cellucid_desktop.server.runner import ServerThread
from cellucid_desktop.server.viewer_assets import STATIC_DIR


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_root_serves_the_viewer_page_uncached_with_etag(viewer_server: ServerThread) -> None:
    status, headers, body = fetch(f"{viewer_server.url}/?dataset=small-test")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert body == (STATIC_DIR / "index.html").read_bytes()
    status, _, body = fetch(f"{viewer_server.url}/", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


def test_every_module_the_page_loads_is_served_as_javascript(viewer_server: ServerThread) -> None:
    modules = sorted(p.relative_to(STATIC_DIR).as_posix() for p in (STATIC_DIR / "js").glob("*.js"))
    assert "js/main.js" in modules
    for module in modules:
        status, headers, body = fetch(f"{viewer_server.url}/viewer/{module}")
        assert status == 200, module
        assert headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache"
        for imported in re.findall(r'from "\./([\w-]+\.js)"', body.decode()):
            assert f"js/{imported}" in modules, f"{module} imports missing {imported}"
    _, _, page = fetch(f"{viewer_server.url}/")
    preloaded = set(re.findall(r'<link rel="modulepreload" href="viewer/(js/[\w-]+\.js)">', page.decode()))
    assert preloaded == set(modules) - {"js/main.js"}, "index.html must preload every module"
    status, headers, _ = fetch(f"{viewer_server.url}/viewer/viewer.css")
    assert status == 200 and headers["Content-Type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize("path", [
    "/viewer/../server/app.py", "/viewer/%2e%2e/server/app.py", "/viewer/js/nope.js",
    "/viewer/js", "/viewer//etc/passwd", "/viewer/index.py",
])
def test_paths_outside_the_static_folder_or_unknown_are_404(viewer_server: ServerThread, path: str) -> None:
    status, _, body = fetch(f"{viewer_server.url}{path}")
    assert status == 404, path
    assert b"import" not in body
