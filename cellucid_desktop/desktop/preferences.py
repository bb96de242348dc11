"""The settings window's actions: change settings, clear caches, show the log."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cellucid_desktop import paths
from cellucid_desktop.desktop.system import open_with_system
from cellucid_desktop.logs import log_file

if TYPE_CHECKING:
    from cellucid_desktop.settings import UserState

# Cache sub-folders the Settings window can clear (under paths.cache_dir()).
CACHE_FOLDERS = {"genes": "gene-index", "webapp": "webapp", "demo": "demo"}


class Preferences:
    """``changed()`` runs after a setting changed (the pages re-read their state)."""

    def __init__(self, user: UserState, changed: Callable[[], None]) -> None:
        self.user = user
        self._changed = changed

    def view(self) -> dict[str, Any]:
        """The settings the pages show and edit."""
        settings = self.user.settings
        return {"default_viewer": settings.default_viewer,
                "close_to_tray": settings.close_to_tray, "port": settings.port,
                "theme": settings.theme, "webapp_source": settings.webapp_source}

    def save(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply and save; an unusable web-app source is refused with ``error``."""
        from cellucid_desktop.webapp_source import SourceURLError, validate_source_url

        if "webapp_source" in changes:
            try:
                validate_source_url(changes["webapp_source"])
            except SourceURLError as exc:
                return {**self.view(), "error": str(exc)}
        self.user.update_settings(changes)
        self._changed()
        return self.view()

    @staticmethod
    def clear_cache(kind: str) -> str:
        folder = CACHE_FOLDERS.get(kind)
        if folder is None:
            return f"Unknown cache {kind!r}."
        target = paths.cache_dir() / folder
        try:
            if kind == "webapp":  # the web-app cache has its own lock against a running fetch
                from cellucid_desktop.server.webapp_cache import WebAppCache

                WebAppCache(target).clear()
            else:
                shutil.rmtree(target)
        except FileNotFoundError:
            return "Already empty."
        except OSError as exc:
            return f"Could not clear {target}: {exc.strerror or exc}."
        return "Cleared."

    @staticmethod
    def show_log() -> None:
        open_with_system(log_file())
