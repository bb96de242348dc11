"""Progress, concurrency, crash leftovers, the refresh policy and source URL rules."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cellucid_desktop.server.webapp_cache import WebAppCache
from cellucid_desktop.server.webapp_download import verify_generation
from cellucid_desktop.webapp_source import (SourceURLError, WebAppError, default_source_url,
                                           validate_source_url)
from tests.webapp.source import BuildSource, make_build

BIG = os.urandom(3 * 1024 * 1024)  # several read chunks, so progress moves within a file


def test_progress_reports_monotonically_to_completion(source: BuildSource,
                                                      cache: WebAppCache) -> None:
    source.routes = make_build("big", extra={"assets/big.bin": (BIG, "application/octet-stream")})
    calls: list[tuple[int, int, str]] = []
    polled: list[str] = []

    def progress(done: int, total: int, path: str) -> None:
        calls.append((done, total, path))
        polled.append(cache.status().state)

    build = cache.fetch(progress)
    total = build.inventory.total_bytes
    assert total > len(BIG)
    dones = [done for done, _, _ in calls]
    assert dones == sorted(dones) and dones[-1] == total
    assert {t for _, t, _ in calls} == {total}
    assert sum(1 for _, _, p in calls if p == "assets/big.bin") > 3
    assert "downloading" in polled
    status = cache.status()
    assert (status.state, status.done_bytes, status.total_bytes, status.build_id) == \
        ("ready", total, total, "big")


def test_background_fetch_is_polled_through_status(source: BuildSource,
                                                   cache: WebAppCache) -> None:
    thread = cache.start_fetch()
    assert cache.start_fetch() is thread or not thread.is_alive()
    thread.join(60)
    assert cache.status().state == "ready" and cache.status().build_id == "build-1"
    source.stop()
    failing = WebAppCache(cache.root.parent / "other", source_url=source.url, timeout=5)
    failing.start_fetch().join(60)
    assert failing.status().state == "failed"
    assert "Could not reach" in failing.status().message
    source.start()


def test_raising_from_progress_cancels_and_keeps_the_cache(source: BuildSource,
                                                           cache: WebAppCache) -> None:
    good = cache.fetch()
    source.routes = make_build("build-2", marker="two")

    def cancel(done: int, total: int, path: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.fetch(cancel)
    assert cache.current() == good
    assert cache.status().state == "failed"
    assert sorted(p.name for p in cache.root.iterdir()) == \
        [".lock", good.directory.name, "state.json"]


def test_concurrent_fetches_do_not_corrupt_the_cache(source: BuildSource,
                                                     cache: WebAppCache) -> None:
    source.routes = make_build("shared", extra={"assets/big.bin": (BIG, "application/octet-stream")})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "cellucid_desktop", "webapp", "fetch",
               "--source", source.url, "--cache-dir", str(cache.root)]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors: list[BaseException] = []

    def fetch_in_thread() -> None:
        try:
            WebAppCache(cache.root, source_url=source.url).fetch()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch_in_thread) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    outputs = [process.communicate(timeout=120) for process in processes]
    assert errors == []
    assert [p.returncode for p in processes] == [0, 0], outputs
    build = cache.cached_build()
    assert build is not None and build.build_id == "shared"
    verify_generation(build.directory, build.inventory)
    assert sorted(p.name for p in cache.root.iterdir()) == \
        [".lock", build.directory.name, "state.json"]


def test_stale_staging_dir_from_a_crash_is_cleaned_up(source: BuildSource,
                                                      cache: WebAppCache) -> None:
    good = cache.fetch()
    crashed = cache.root / ".staging-deadbeef"
    (crashed / "assets").mkdir(parents=True)
    (crashed / "assets" / "app.js").write_bytes(b"half a fi")
    orphan = cache.root / ("gen-" + "0" * 32)
    orphan.mkdir()
    (cache.root / ".state-123.tmp").write_text("{")
    assert cache.current() == good  # leftovers never disturb the active build
    cache.fetch()
    assert sorted(p.name for p in cache.root.iterdir()) == \
        [".lock", good.directory.name, "state.json"]


def test_fresh_cache_is_reused_without_asking_the_source(source: BuildSource,
                                                         cache: WebAppCache) -> None:
    good = cache.fetch()
    source.requests.clear()
    assert cache.ensure() == good
    assert source.requests == []


def test_stale_cache_is_checked_and_kept_when_offline(source: BuildSource,
                                                      cache: WebAppCache) -> None:
    good = cache.fetch()
    source.stop()
    assert cache.ensure(max_age=0) == good
    status = cache.status()
    assert status.state == "ready" and "Could not reach" in status.message
    source.start()
    newer = WebAppCache(cache.root, source_url=source.url)
    source.routes = make_build("build-2")
    assert newer.ensure(max_age=0).build_id == "build-2"


def test_a_day_old_check_triggers_a_refresh(source: BuildSource, cache: WebAppCache) -> None:
    first = cache.fetch()
    _set_checked_at(cache, time.time() - 2 * 86400)
    source.routes = make_build("build-2")
    source.requests.clear()
    refreshed = cache.ensure()
    assert "cellucid-web-assets.json" in source.requests
    assert refreshed.build_id == "build-2" and refreshed.directory != first.directory


def test_damaged_state_means_no_build_and_clear_removes_everything(
        source: BuildSource, cache: WebAppCache) -> None:
    cache.fetch()
    (cache.root / "state.json").write_text("{not json")
    assert cache.current() is None
    cache.clear()
    assert cache.current() is None and cache.status().state == "idle"
    assert sorted(p.name for p in cache.root.iterdir()) == [".lock"]


def _set_checked_at(cache: WebAppCache, when: float) -> None:
    import json
    state = cache.root / "state.json"
    document = json.loads(state.read_text())
    document["checked_at"] = when
    state.write_text(json.dumps(document))


def test_cache_from_another_source_is_not_used(source: BuildSource,
                                               cache: WebAppCache) -> None:
    cache.fetch()
    other = WebAppCache(cache.root, source_url="http://127.0.0.1:9")
    assert other.cached_build() is None
    assert other.current() is not None  # still the active generation, from elsewhere


@pytest.mark.parametrize("url", ["https://www.cellucid.com", "http://127.0.0.1:4173",
                                 "http://localhost:8000", "http://[::1]:5173",
                                 "https://example.org/cellucid/app"])
def test_valid_source_urls_are_accepted(url: str) -> None:
    assert validate_source_url(url) == url


@pytest.mark.parametrize("url", ["", " https://www.cellucid.com", "https://www.cellucid.com/",
                                 "http://example.org", "ftp://example.org",
                                 "https://user:pw@example.org", "https://example.org/?a=1",
                                 "https://example.org#x", "www.cellucid.com",
                                 "https://example.org:99999"])
def test_invalid_source_urls_are_refused_with_a_sentence(url: str) -> None:
    with pytest.raises(SourceURLError) as refused:
        validate_source_url(url)
    assert str(refused.value).endswith(".")
    with pytest.raises(WebAppError):
        WebAppCache(source_url=url)


def test_default_cache_lives_in_the_user_cache_folder(isolated_user_dirs: Path) -> None:
    cache = WebAppCache()
    assert default_source_url() == "https://www.cellucid.com" == cache.source_url
    assert cache.root == isolated_user_dirs / "xdg_cache_home" / "cellucid-desktop" / "webapp"


def test_cli_fetch_status_clear(source: BuildSource, cache: WebAppCache,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from cellucid_desktop.cli import main
    where = ["--source", source.url, "--cache-dir", str(cache.root)]
    assert main(["webapp", "fetch", *where]) == 0
    assert "build-1: 3 files" in capsys.readouterr().out
    assert main(["webapp", "status", *where]) == 0
    assert "yes, every file matches its SHA-256" in capsys.readouterr().out
    (cache.current().directory / "assets" / "app.css").write_bytes(b"changed")
    assert main(["webapp", "status", *where]) == 0
    assert "NO: run `cellucid-desktop webapp fetch`" in capsys.readouterr().out
    assert main(["webapp", "clear", *where]) == 0
    assert cache.current() is None
    assert main(["webapp", "fetch", "--source", "http://example.org"]) == 1
    assert capsys.readouterr().err.startswith("Error: The web app source must use https")
