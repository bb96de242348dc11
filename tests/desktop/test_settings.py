"""Settings and recent files survive crashes and damaged files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cellucid_desktop import settings
from cellucid_desktop.atomic_files import atomic_write_json, read_json
from cellucid_desktop.settings import MAX_RECENT, UserState
from cellucid_desktop.webapp_source import DEFAULT_SOURCE_URL


def test_a_crash_in_the_middle_of_a_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    atomic_write_json(target, {"theme": "dark"})

    def crash(_fd: int) -> None:  # the process dies after writing, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(settings.os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, {"theme": "light", "padding": "x" * 100_000})
    assert json.loads(target.read_text()) == {"theme": "dark"}
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]  # no temp file left


def test_a_half_written_file_from_another_tool_is_moved_aside_with_a_message(tmp_path):
    (tmp_path / "recent.json").write_text('["/data/a.h5ad", "/data/b.h5')
    state = UserState(tmp_path)
    assert state.recent() == []
    assert any("recent.json was damaged" in m for m in state.messages)
    kept = list(tmp_path.glob("recent.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text().startswith('["/data/a.h5ad"')
    state.add_recent(tmp_path / "c.h5ad")  # and the app keeps working
    assert UserState(tmp_path).recent() == [str(tmp_path / "c.h5ad")]


def test_json_of_the_wrong_shape_counts_as_damaged(tmp_path):
    (tmp_path / "settings.json").write_text("[1, 2]")
    value, message = read_json(tmp_path / "settings.json", {})
    assert value == {} and "damaged" in message


def test_invalid_setting_values_fall_back_to_defaults(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps(
        {"theme": "purple", "port": 70000, "close_to_tray": "yes", "default_viewer": "webapp",
         "unknown": 1}))
    loaded = UserState(tmp_path).settings
    assert (loaded.theme, loaded.port, loaded.close_to_tray, loaded.default_viewer) == (
        "system", 0, True, "webapp")


def test_settings_changes_are_saved_and_reloaded(tmp_path):
    state = UserState(tmp_path)
    state.update_settings({"theme": "light", "port": 9000, "close_to_tray": False})
    again = UserState(tmp_path).settings
    assert (again.theme, again.port, again.close_to_tray) == ("light", 9000, False)
    assert not state.messages


def test_recent_files_are_newest_first_without_duplicates_and_bounded(tmp_path):
    state = UserState(tmp_path)
    files = [tmp_path / f"f{i}.h5ad" for i in range(MAX_RECENT + 3)]
    for f in files:
        f.write_bytes(b"")
        state.add_recent(f)
    state.add_recent(files[0])
    recent = UserState(tmp_path).recent()
    assert recent[0] == str(files[0])
    assert recent[1] == str(files[-1])
    assert len(recent) == MAX_RECENT and len(set(recent)) == MAX_RECENT


def test_a_moved_recent_file_is_reported_missing_and_can_be_removed(tmp_path):
    state = UserState(tmp_path)
    here, gone = tmp_path / "here.h5ad", tmp_path / "gone.h5ad"
    for f in (here, gone):
        f.write_bytes(b"")
        state.add_recent(f)
    os.remove(gone)
    entries = {Path(e["path"]).name: e["missing"] for e in state.recent_entries()}
    assert entries == {"gone.h5ad": True, "here.h5ad": False}
    state.remove_recent(str(gone))
    assert UserState(tmp_path).recent() == [str(here)]


def test_an_unusable_web_app_source_falls_back_to_the_official_one(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps(
        {"webapp_source": "http://example.com"}))  # plain http off this computer
    assert UserState(tmp_path).settings.webapp_source == DEFAULT_SOURCE_URL
    state = UserState(tmp_path)
    state.update_settings({"webapp_source": "http://127.0.0.1:4173"})
    assert UserState(tmp_path).settings.webapp_source == "http://127.0.0.1:4173"


def test_the_settings_window_refuses_a_bad_web_app_source_with_a_sentence(isolated_user_dirs):
    from cellucid_desktop.desktop.preferences import Preferences

    preferences = Preferences(UserState(), changed=lambda: None)
    saved = preferences.save({"webapp_source": "https://www.cellucid.com/"})
    assert "trailing '/'" in saved["error"] and saved["webapp_source"] == DEFAULT_SOURCE_URL
    assert UserState().settings.webapp_source == DEFAULT_SOURCE_URL
    saved = preferences.save({"webapp_source": "https://mirror.example.org"})
    assert "error" not in saved and UserState().settings.webapp_source == \
        "https://mirror.example.org"
