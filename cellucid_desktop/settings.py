"""Settings and recent files: small JSON files under the config dir, written atomically
(atomic_files: a crash never leaves a half-written file; an unreadable one is moved
aside and defaults are used, with a message for the user instead of a crash)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cellucid_desktop import paths
from cellucid_desktop.atomic_files import atomic_write_json, read_json
from cellucid_desktop.webapp_source import DEFAULT_SOURCE_URL, SourceURLError, validate_source_url

log = logging.getLogger(__name__)

MAX_RECENT = 15
VIEWERS = ("builtin", "webapp")
THEMES = ("system", "light", "dark")


@dataclass
class Settings:
    """What the Settings window edits. Unknown or invalid values fall back to defaults."""

    default_viewer: str = "builtin"  # "builtin" | "webapp" (the official Cellucid web app)
    close_to_tray: bool = True
    port: int = 0  # 0 = any free port
    theme: str = "system"  # "system" | "light" | "dark"
    tray_hint_shown: bool = False
    webapp_source: str = DEFAULT_SOURCE_URL  # where the official web build is fetched from

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        known, defaults = {f.name for f in fields(cls)}, cls()
        merged = cls(**{k: v for k, v in raw.items()
                        if k in known and isinstance(v, type(getattr(defaults, k)))})
        if merged.default_viewer not in VIEWERS:
            merged.default_viewer = "builtin"
        if merged.theme not in THEMES:
            merged.theme = "system"
        if not 0 <= merged.port <= 65535:
            merged.port = 0
        try:
            validate_source_url(merged.webapp_source)
        except SourceURLError:
            merged.webapp_source = DEFAULT_SOURCE_URL
        return merged


class UserState:
    """Settings + recent files, loaded once and saved on every change (thread-safe)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or paths.config_dir()
        self._lock = threading.Lock()
        self.messages: list[str] = []
        raw, msg = read_json(self.settings_path, {})
        self._note(msg)
        self.settings = Settings.from_dict(raw)
        recent, msg = read_json(self.recent_path, [])
        self._note(msg)
        self._recent = [p for p in recent if isinstance(p, str)][:MAX_RECENT]

    @property
    def settings_path(self) -> Path:
        return self.folder / "settings.json"

    @property
    def recent_path(self) -> Path:
        return self.folder / "recent.json"

    def _note(self, message: str | None) -> None:
        if message:
            self.messages.append(message)

    def update_settings(self, changes: dict[str, Any]) -> Settings:
        """Apply a partial change (from the Settings window), validate, save."""
        with self._lock:
            self.settings = Settings.from_dict({**asdict(self.settings), **changes})
            atomic_write_json(self.settings_path, asdict(self.settings))
            return self.settings

    def recent(self) -> list[str]:
        """Recent files, newest first."""
        with self._lock:
            return list(self._recent)

    def add_recent(self, path: str | os.PathLike[str]) -> None:
        entry = str(Path(path).expanduser().resolve())
        with self._lock:
            self._recent = [entry, *[p for p in self._recent if p != entry]][:MAX_RECENT]
            atomic_write_json(self.recent_path, self._recent)

    def remove_recent(self, path: str) -> None:
        with self._lock:
            self._recent = [p for p in self._recent if p != path]
            atomic_write_json(self.recent_path, self._recent)

    def recent_entries(self) -> list[dict[str, Any]]:
        """Recent files and store folders for display: path, name, whether it is still
        there (a Zarr store is a folder)."""
        return [{"path": p, "name": Path(p).name, "missing": not Path(p).exists()}
                for p in self.recent()]
