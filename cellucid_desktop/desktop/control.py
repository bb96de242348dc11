"""Routes the desktop layer adds to the local server (through ``ServerThread(blueprints=)``).

* ``/_desktop/pages/*``: the app's own static pages (home, settings, connect, about).
  Harmless to anyone: they do nothing without the pywebview JS bridge of our windows.
* ``POST /_desktop/control/<command>``: ``ping``, ``open``, ``show``, ``quit``, used by a
  second launch and by ``cellucid-desktop open|quit``. ``hello`` first proves to the
  caller that this server knows the per-launch secret; each command then needs the
  caller's proof of it (the challenge in ``desktop/instance.py``; the secret never
  crosses the socket). Any request carrying an ``Origin`` header is refused: a web page
  always sends one on a cross-site POST, our own command line never does, and the
  server's CORS answer does not allow the proof headers, so a page cannot even
  preflight them. ``connect`` (same guard) is ``cellucid-desktop connect`` handing a
  remote to the app. These routes guard themselves, so the server's access-token layer
  lets them through (``SELF_GUARDED``).
* ``/__test__/*``: the GUI tests' control surface, registered only when
  ``CELLUCID_DESKTOP_TEST_TOKEN`` is set, behind its own header: ``windows`` (keys,
  titles, URLs, load times), ``eval`` (JavaScript in one window) and ``prompts`` (the
  sign-in questions shown so far).

Every route and command name is in ``desktop/ipc.py``.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, Response, abort, jsonify, request, send_from_directory

from cellucid_desktop.desktop.instance import Challenges
from cellucid_desktop.desktop.ipc import (CONTROL_PREFIX, NONCE_HEADER, PROOF_HEADER,
                                          TEST_PREFIX, TEST_TOKEN_HEADER, TEST_TOKEN_VAR,
                                          Control, TestSurface)

log = logging.getLogger(__name__)

PAGES_DIR = Path(__file__).with_name("pages")
# Path prefixes whose routes check their own credentials (ServerThread(self_guarded=)).
SELF_GUARDED = (f"{CONTROL_PREFIX}/", TEST_PREFIX)


class Controller(Protocol):
    """What the control routes and the test surface ask of the app (DesktopApp)."""

    def open_paths(self, paths: list[str], demo: bool = False) -> list[dict[str, Any]]: ...
    def show_home(self) -> None: ...
    def quit(self) -> None: ...
    def connect(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def test_windows(self) -> list[dict[str, Any]]: ...
    def test_eval(self, key: str, script: str) -> Any: ...
    def test_prompts(self) -> list[dict[str, Any]]: ...


def _token_ok(header: str, expected: str) -> bool:
    supplied = request.headers.get(header, "")
    return hmac.compare_digest(supplied.encode(), expected.encode())


def _refuse() -> None:
    """A short plain-text 403 (not Flask's HTML page): callers are programs."""
    abort(Response("Forbidden: this control request is not allowed.\n", status=403,
                   mimetype="text/plain"))


def _refuse_web_pages() -> None:
    if request.headers.get("Origin") is not None:
        log.warning("Refused a control request from a web page (Origin %r)",
                    request.headers.get("Origin"))
        _refuse()


def _guard(header: str, expected: str) -> None:
    _refuse_web_pages()
    if not _token_ok(header, expected):
        _refuse()


def desktop_routes(app: Controller, secret: str,
                   test_token: str | None = None) -> Callable[[Flask], None]:
    """The ``blueprints=`` hook for ServerThread."""

    challenges = Challenges(secret)

    def register(flask_app: Flask) -> None:
        @flask_app.get("/_desktop/pages/<path:name>")
        def page(name: str) -> Response:
            return send_from_directory(PAGES_DIR, name)

        @flask_app.post(f"{CONTROL_PREFIX}/<command>")
        def control(command: str) -> Response:
            _refuse_web_pages()
            body = request.get_json(silent=True) or {}
            if command == Control.HELLO:
                return jsonify(challenges.hello(str(body.get("nonce", ""))[:64]))
            if not challenges.verify(request.headers.get(NONCE_HEADER, ""),
                                     request.headers.get(PROOF_HEADER, ""), command,
                                     request.get_data()):
                _refuse()
            if command == Control.PING:
                return jsonify(app="cellucid-desktop", pid=os.getpid())
            if command == Control.OPEN:
                files = [str(p) for p in body.get("paths", []) if isinstance(p, str)]
                results = app.open_paths(files, demo=bool(body.get("demo")))
                if not files and not body.get("demo"):
                    app.show_home()
                return jsonify(results=results)
            if command == Control.SHOW:
                app.show_home()
                return jsonify(ok=True)
            if command == Control.CONNECT:  # `cellucid-desktop connect`: start, or poll
                return jsonify(app.connect(body))
            if command == Control.QUIT:
                app.quit()
                return jsonify(ok=True)
            abort(404)

        if test_token:
            _register_test_routes(flask_app, app, test_token)

    return register


def _register_test_routes(flask_app: Flask, app: Controller, token: str) -> None:
    @flask_app.route(f"{TEST_PREFIX}<command>", methods=["GET", "POST"])
    def test_surface(command: str) -> Response:
        _guard(TEST_TOKEN_HEADER, token)
        body = request.get_json(silent=True) or {}
        if command == TestSurface.WINDOWS:
            return jsonify(windows=app.test_windows())
        if command == TestSurface.EVAL:
            return jsonify(result=app.test_eval(str(body["key"]), str(body["js"])))
        if command == TestSurface.PROMPTS:
            return jsonify(prompts=app.test_prompts())
        abort(404)


def test_token_from_env() -> str | None:
    return os.environ.get(TEST_TOKEN_VAR) or None
