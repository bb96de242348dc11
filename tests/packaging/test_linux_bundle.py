"""The PyInstaller Linux bundle really works: it answers, serves, opens a dataset in a
viewer window that draws its cells, and once integrated opens a double-clicked .h5ad."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from cellucid_desktop import __version__
from cellucid_desktop.desktop import instance
from tests.desktop import gui
from tests.helpers import wait_for

CELLS = 3000  # small_h5ad


@pytest.fixture()
def frozen_launch(frozen_app: Path, launch, monkeypatch):
    """tests/desktop's launcher (and its `quit` at teardown), running the frozen binary."""
    monkeypatch.setattr(gui, "app_command", lambda *args: [str(frozen_app), *args])
    return launch


def test_frozen_binary_answers_version(frozen_app):
    result = subprocess.run([str(frozen_app), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cellucid-desktop {__version__}"


def test_every_shared_library_in_the_bundle_resolves(frozen_app):
    internal = frozen_app.parent / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}
    missing = []
    for path in internal.rglob("*.so*"):
        if path.is_file() and not path.is_symlink():
            out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, timeout=60).stdout
            missing += [f"{path.name}: {line.strip()}" for line in out.splitlines() if "not found" in line]
    assert not missing, "\n".join(missing)


def test_bundle_libraries_carry_no_debug_info_except_auditwheel_ones(frozen_app):
    """build-linux.sh strips what it safely can (pyenv's libpython is 23 MB unstripped);
    the auditwheel `*.libs/` folders stay as shipped, since strip breaks them."""
    internal = frozen_app.parent / "_internal"
    files = [str(p) for p in internal.rglob("*") if p.is_file() and not p.is_symlink()]
    described = subprocess.run(["file", "-N", *files], capture_output=True, text=True,
                               check=True, timeout=120).stdout.splitlines()
    unstripped = [line.split(": ")[0] for line in described if re.search(r"ELF .*not stripped", line)]
    outside = [p for p in unstripped if not re.search(r"\.libs/[^/]+$", p)]
    assert not outside, "\n".join(outside)
    assert any("numpy.libs/" in p for p in unstripped), "numpy's auditwheel libraries were stripped"


def test_frozen_serve_demo_answers_health(frozen_app):
    proc = subprocess.Popen([str(frozen_app), "serve", "--demo", "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        for line in proc.stdout:  # until the banner, or EOF if the binary dies
            lines.append(line)
            if match := re.search(r"^  Local URL:\s+(\S+)$", line):
                break
        assert match, "the frozen server did not start:\n" + "".join(lines)
        url = match.group(1)
        with urllib.request.urlopen(f"{url}/_cellucid/health", timeout=30) as response:
            assert response.status == 200
            assert json.loads(response.read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(30)


def _draws_cells(app: gui.App, env: dict[str, str], window_title: str, shot: Path) -> bool:
    """The viewer has all cells on the GPU and its X window shows many colours."""
    if app.eval("viewer:small-test", "document.documentElement.dataset.viewerState") != "ready":
        return False
    if app.eval("viewer:small-test", "window.cellucidViewer.renderer.count") != CELLS:
        return False
    window = gui.visible_window(env, f"^{window_title}$")
    geometry = dict(line.split("=") for line in
                    gui.xdotool(env, "getwindowgeometry", "--shell", window).splitlines())
    x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    crop = gui.screenshot(env, shot).crop((x, y, x + w, y + h))
    return len(crop.getcolors(1 << 24) or []) > 50


def test_frozen_app_opens_a_file_in_a_viewer_window_that_draws_its_cells(
        frozen_launch, app_env, small_h5ad, tmp_path):
    app = frozen_launch(str(small_h5ad))
    try:
        viewer = app.wait_window("viewer:small-test", "the frozen app's viewer window", timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\napp exit code {app.proc.poll()}, output:\n"
                             + "".join(app.output) + (app.proc.stdout.read() or "")) from None
    assert viewer["title"] == "Small test"
    assert gui.wait_visible(app_env, "^Small test$", 60)
    wait_for(lambda: _draws_cells(app, app_env, "Small test", tmp_path / "viewer.png"), 90,
             interval=1, what="the viewer drawing its cells")


def test_integrated_bundle_opens_a_double_clicked_h5ad(frozen_app, frozen_launch, app_env,
                                                        small_h5ad, tmp_path):
    integrate = subprocess.run([str(frozen_app), "integrate"], env=app_env, capture_output=True,
                               text=True, timeout=120)
    assert integrate.returncode == 0, integrate.stderr
    entry = Path(app_env["XDG_DATA_HOME"]) / "applications" / "cellucid-desktop.desktop"
    assert f"Exec={frozen_app} %F" in entry.read_text()
    assert subprocess.run(["desktop-file-validate", str(entry)], timeout=60).returncode == 0
    dataset = tmp_path / "double click.h5ad"
    shutil.copy(small_h5ad, dataset)

    # `gio open` is what a file manager does on double-click: default app for the type.
    subprocess.run(["gio", "open", str(dataset)], env=app_env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, timeout=60)
    running = wait_for(instance.find_running, 120, interval=0.5, what="the app started by gio open")
    try:
        def viewer_titles() -> list[str]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{running.port}/__test__/windows",
                headers={"X-Cellucid-Test-Token": app_env["CELLUCID_DESKTOP_TEST_TOKEN"]})
            with urllib.request.urlopen(request, timeout=30) as response:
                windows = json.loads(response.read())["windows"]
            return [w["title"] for w in windows if w["key"].startswith("viewer:") and w["loaded_at"]]

        assert wait_for(viewer_titles, 120, interval=0.5, what="a viewer window") == ["Small test"]
    finally:
        children = gui.descendants(running.pid)
        gui.run_cli(app_env, "quit", timeout=60)
        try:
            wait_for(lambda: not gui.running(running.pid), 30, what="the app to quit")
        finally:
            for pid in [running.pid, *children]:
                if gui.running(pid):
                    os.kill(pid, 9)
