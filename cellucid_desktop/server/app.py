"""The Flask app factory: one WSGI app per server, wrapped in the Host/CORS guard."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask, Response, request

from cellucid_desktop.server import analysis_api, data_api, protocol, viewer_assets
from cellucid_desktop.server.context import ServerContext
from cellucid_desktop.server.access import TokenGuard
from cellucid_desktop.server.registry import DatasetRegistry
from cellucid_desktop.server.security import HostGuard, WSGIApp
from cellucid_desktop.server.store import StoreRoutes, text_response

POST_REFUSAL = ("This server answers GET and HEAD; the viewer talks to it on its "
                "channel (/_cellucid/ws)")

# Which viewer an origin serves at `/`: our built-in one, or the official Cellucid web
# app (server/webapp_assets.py, on its own origin, added through `blueprints`).
UI_CHOICES = ("builtin", "webapp")


def serves_builtin_viewer(context: ServerContext) -> bool:
    """Whether the built-in viewer's routes belong on this origin (not on the web app's)."""
    return context.extras.get("ui", "builtin") == "builtin"


def create_flask_app(context: ServerContext) -> Flask:
    """The bare Flask app: no Host guard and no store route (see create_app)."""
    app = Flask(__name__, static_folder=None)
    app.extensions["cellucid"] = context
    app.url_map.strict_slashes = False
    app.register_blueprint(protocol.bp)
    if serves_builtin_viewer(context):
        app.register_blueprint(viewer_assets.bp)
        data_api.register(app)
        analysis_api.register(app)
    for register in context.extras.get("blueprints", ()):  # type: ignore[union-attr]
        register(app)
    _register_error_pages(app)
    return app


def _register_error_pages(app: Flask) -> None:
    """Plain-text errors in cellucid's words, never an HTML or traceback page."""

    @app.errorhandler(404)
    def not_found(_err: Exception) -> Response:
        if request.method not in ("GET", "HEAD"):
            return text_response(405, POST_REFUSAL)
        return text_response(404, f"Not found: {request.path.lstrip('/')}")

    @app.errorhandler(405)
    def not_allowed(_err: Exception) -> Response:
        return text_response(405, POST_REFUSAL)

    @app.errorhandler(500)
    def internal(_err: Exception) -> Response:
        return text_response(500, "Internal server error")


def create_app(registry: DatasetRegistry, *, bind_host: str = "127.0.0.1",
               port: Callable[[], int | None] = lambda: 0, allowed_hosts: Iterable[str] = (),
               blueprints: Iterable[Callable[[Flask], None]] = (),
               ui: str = "builtin", token: str | None = None,
               self_guarded: Iterable[str] = (),
               front: Callable[[WSGIApp], WSGIApp] | None = None,
               ) -> tuple[HostGuard, StoreRoutes]:
    """The guarded WSGI app the runner serves, and its store routes (whose fast path
    the runner's I/O thread asks): Host guard -> access token (if ``token``) ->
    ``front`` -> store routes -> Flask.

    ``blueprints`` are callables that add routes (viewer assets, data API, desktop
    control routes), so layers above the server plug in without the server
    importing them; ``self_guarded`` names the path prefixes of routes that check
    their own credentials. ``front`` wraps the app in a layer of the caller's (the
    local proxy's forwarder) behind the token check. ``ui`` is one of UI_CHOICES.
    """
    if ui not in UI_CHOICES:
        raise ValueError(f"ui must be one of {UI_CHOICES}, not {ui!r}")
    context = ServerContext(registry=registry, bind_host=bind_host, port=port,
                            allowed_hosts=tuple(allowed_hosts),
                            extras={"blueprints": tuple(blueprints), "ui": ui})
    store = StoreRoutes(create_flask_app(context), registry)
    inner: WSGIApp = store if front is None else front(store)
    if token is not None:
        inner = TokenGuard(inner, token, self_guarded=self_guarded)
    return HostGuard(inner, bind_host=bind_host, port=port,
                     allowed_hosts=context.allowed_hosts), store
