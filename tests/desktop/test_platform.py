"""Platform glue: the OS opener, the macOS Dock policy and the Qt WebEngine flags.

macOS and Windows cannot run here, so their system calls are replaced by recorders;
the Linux detection runs against a real Xvfb.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

from cellucid_desktop.desktop import qtenv, system
from cellucid_desktop.desktop.qtenv import FLAGS_VAR, SOFTWARE_GL_VAR


def test_show_log_uses_startfile_on_windows(monkeypatch, tmp_path):
    opened: list[str] = []
    monkeypatch.setattr(system.os, "startfile", opened.append, raising=False)  # Windows API
    system.open_with_system(tmp_path / "app.log", platform="win32")
    assert opened == [str(tmp_path / "app.log")]


def test_show_log_uses_open_on_macos(monkeypatch, tmp_path):
    argv: list[list[str]] = []
    monkeypatch.setattr(system.subprocess, "Popen", lambda args, **_kw: argv.append(args))
    system.open_with_system(tmp_path / "app.log", platform="darwin")  # `open` is macOS-only
    assert argv == [["open", str(tmp_path / "app.log")]]


def test_the_tray_process_hides_from_the_dock_on_macos(monkeypatch):
    calls: list[object] = []
    app = types.SimpleNamespace(setActivationPolicy_=calls.append)
    fake_appkit = types.SimpleNamespace(  # pyobjc's AppKit exists only on macOS
        NSApplication=types.SimpleNamespace(sharedApplication=lambda: app),
        NSApplicationActivationPolicyAccessory=1)
    monkeypatch.setitem(sys.modules, "AppKit", fake_appkit)
    system.hide_from_dock(platform="darwin")
    assert calls == [1]
    system.hide_from_dock(platform="linux")
    assert calls == [1]


def test_xvfb_is_detected_as_a_software_display(xserver):
    assert qtenv.x_display_is_software(xserver)


def test_webengine_flags_are_added_once_and_keep_the_users_own(monkeypatch):
    monkeypatch.setattr(qtenv, "running_as_root", lambda: True)
    env = {FLAGS_VAR: "--lang=de", SOFTWARE_GL_VAR: "1"}
    qtenv.configure(env)
    qtenv.configure(env)
    assert env[FLAGS_VAR].split() == ["--lang=de", "--no-sandbox", "--ignore-gpu-blocklist",
                                      "--disable-gpu-compositing"]
    assert env["QT_API"] == "pyside6"


def test_no_sandbox_flag_for_a_normal_user_on_a_gpu_display(monkeypatch):
    monkeypatch.setattr(qtenv, "running_as_root", lambda: False)
    env = {SOFTWARE_GL_VAR: "0"}
    assert qtenv.configure(env) == [] and FLAGS_VAR not in env


def test_quit_without_a_running_app_says_so(isolated_user_dirs):
    done = subprocess.run([sys.executable, "-m", "cellucid_desktop", "quit"], text=True,
                          capture_output=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 1
    assert done.stderr.strip() == "Error: Cellucid Desktop is not running."
