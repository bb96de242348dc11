"""What each OS is told about the app: macOS Info.plist, Windows registry + Inno Setup
script, Linux .desktop quoting; and that the committed packaging/ files are current."""

from __future__ import annotations

import plistlib
import re
from pathlib import Path

import gi
import pytest

from cellucid_desktop.integration import launch_command, linux, macos, templates, windows
from tests.helpers import wait_for

gi.require_version("Gio", "2.0")
from gi.repository import Gio  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_info_plist_parses_and_declares_every_dataset_document_type_and_uti():
    data = plistlib.loads(plistlib.dumps(macos.info_plist("1.2.3")))
    doc_types = {d["LSItemContentTypes"][0]: d for d in data["CFBundleDocumentTypes"]}
    utis = {u["UTTypeIdentifier"]: u for u in data["UTImportedTypeDeclarations"]}
    assert set(doc_types) == set(utis) == {
        "org.scverse.anndata", "org.scverse.mudata", "org.loompy.loom",
        "org.scverse.anndata.zarr-zip", "org.scverse.anndata.zarr"}
    anndata = doc_types["org.scverse.anndata"]
    assert anndata["CFBundleTypeRole"] == "Viewer" and anndata["LSHandlerRank"] == "Default"
    uti = utis["org.scverse.anndata"]
    assert uti["UTTypeTagSpecification"]["public.filename-extension"] == ["h5ad"]
    assert "public.data" in uti["UTTypeConformsTo"]
    endings = {u["UTTypeTagSpecification"]["public.filename-extension"][0] for u in utis.values()}
    assert endings == {"h5ad", "h5mu", "loom", "zarr.zip", "zarr"}
    assert "public.zip-archive" in utis["org.scverse.anndata.zarr-zip"]["UTTypeConformsTo"]
    # a store folder stays a folder in Finder; the app is offered under Open With
    assert utis["org.scverse.anndata.zarr"]["UTTypeConformsTo"] == ["public.folder"]
    folder = doc_types["org.scverse.anndata.zarr"]
    assert folder["LSHandlerRank"] == "Alternate" and folder["LSTypeIsPackage"] is False
    assert data["NSHighResolutionCapable"] is True and data["LSUIElement"] is False
    assert data["CFBundleShortVersionString"] == "1.2.3"
    assert data["CFBundleExecutable"] == "cellucid-desktop"  # the spec's EXE name
    alternate = macos.info_plist("1", handler_rank="Alternate")
    assert {d["LSHandlerRank"] for d in alternate["CFBundleDocumentTypes"]} == {"Alternate"}
    with pytest.raises(ValueError):
        macos.info_plist("1", handler_rank="Boss")


@pytest.mark.parametrize("ext", ["h5ad", "h5mu", "loom"])
def test_inno_setup_script_registers_a_progid_per_extension_with_quoted_percent_1(ext):
    script = windows.inno_setup_script()
    assert "ChangesAssociations=yes" in script
    registry = [line for line in script.splitlines() if line.startswith("Root: HKA;")]
    command = [line for line in registry if line.endswith(
        rf'CellucidDesktop.{ext}\shell\open\command"; '
        'ValueType: string; ValueName: ""; ValueData: """{app}\\cellucid-desktop.exe"" ""%1"""; '
        "Flags: uninsdeletekey")]
    assert len(command) == 1, "\n".join(registry)
    assert any(rf'Subkey: "Software\Classes\.{ext}\OpenWithProgids"; ValueType: string; '
               f'ValueName: "CellucidDesktop.{ext}"' in line for line in registry)
    assert ".zip" not in script  # a .zarr.zip would claim every .zip
    assert re.search(r'^Name: "\{group\}\\Cellucid Desktop"; Filename: "\{app\}\\cellucid-desktop.exe"$',
                     script, re.M), "a Start-menu entry"
    assert len(registry) == len(windows.registry_values(["x"]))


class FakeWinreg:
    """Stands in for the `winreg` module, which exists only on Windows (a mock, on purpose)."""

    HKEY_CURRENT_USER, REG_SZ, KEY_ALL_ACCESS = "HKCU", 1, 0xF003F

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}

    class _Key:
        def __init__(self, store: dict[str, str]) -> None:
            self.store = store

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def CreateKey(self, root, path):  # noqa: N802 - winreg's names
        return self._Key(self.keys.setdefault(path, {}))

    def OpenKey(self, root, path, reserved=0, access=0):  # noqa: N802
        if path not in self.keys:
            raise FileNotFoundError(path)
        return self._Key(self.keys[path])

    def SetValueEx(self, key, name, reserved, kind, data):  # noqa: N802
        key.store[name] = data

    def QueryValueEx(self, key, name):  # noqa: N802
        if name not in key.store:
            raise FileNotFoundError(name)
        return key.store[name], self.REG_SZ

    def DeleteValue(self, key, name):  # noqa: N802
        del key.store[name]

    def DeleteKey(self, root, path):  # noqa: N802
        if path not in self.keys:
            raise FileNotFoundError(path)
        if any(k.startswith(path + "\\") for k in self.keys):
            raise PermissionError("winreg.DeleteKey refuses keys with subkeys")
        del self.keys[path]


def test_windows_user_install_writes_the_association_and_remove_undoes_it():
    reg = FakeWinreg()
    reg.keys[r"Software\Classes\.h5ad\OpenWithProgids"] = {"Other.h5ad": ""}
    windows.install([r"C:\Apps\Cellucid Desktop\cellucid-desktop.exe"], winreg_module=reg)
    classes = r"Software\Classes"
    for ext in ("h5ad", "h5mu", "loom"):
        assert reg.keys[rf"{classes}\.{ext}"][""] == f"CellucidDesktop.{ext}"
        assert (reg.keys[rf"{classes}\CellucidDesktop.{ext}\shell\open\command"][""]
                == r'"C:\Apps\Cellucid Desktop\cellucid-desktop.exe" "%1"')
        # intermediate keys exist on a real registry too
        reg.keys.setdefault(rf"{classes}\CellucidDesktop.{ext}\shell\open", {})
        reg.keys.setdefault(rf"{classes}\CellucidDesktop.{ext}\shell", {})
    windows.remove(winreg_module=reg)
    assert not any("CellucidDesktop" in k or "cellucid-desktop.exe" in k for k in reg.keys)
    assert reg.keys[rf"{classes}\.h5ad\OpenWithProgids"] == {"Other.h5ad": ""}
    assert "" not in reg.keys[rf"{classes}\.h5ad"]


def test_windows_remove_keeps_another_apps_h5ad_default():
    reg = FakeWinreg()
    reg.keys[r"Software\Classes\.h5ad"] = {"": "Other.h5ad"}
    windows.remove(winreg_module=reg)
    assert reg.keys[r"Software\Classes\.h5ad"] == {"": "Other.h5ad"}


@pytest.mark.parametrize("folder", [
    "plain",
    "My Apps/cellucid desktop",
    'we"ird $HOME `x` back\\slash',  # no %: GLib looks the program up before expanding %%
])
def test_desktop_entry_launches_its_program_with_the_file_through_glib(tmp_path, folder):
    """GLib (what file managers use) unquotes Exec and runs it with the double-clicked file."""
    program = tmp_path / folder / "cellucid-desktop"
    program.parent.mkdir(parents=True)
    seen = tmp_path / "argv.txt"
    program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{seen}"\n')
    program.chmod(0o755)
    entry = tmp_path / "cellucid-desktop.desktop"
    entry.write_text(linux.desktop_entry([str(program), "--flag"]))
    info = Gio.DesktopAppInfo.new_from_filename(str(entry))
    assert info.get_supported_types() == ["application/x-anndata", "application/x-mudata",
                                          "application/x-loom",
                                          "application/x-anndata-zarr-zip"]
    dataset = tmp_path / "two words.h5ad"
    assert info.launch([Gio.File.new_for_path(str(dataset))], None)
    wait_for(lambda: seen.exists() and seen.read_text(), 20, what="the program to run")
    assert seen.read_text().splitlines() == ["--flag", str(dataset)]


def test_unquoted_exec_stays_plain():
    assert linux.quote_exec_arg("/usr/bin/cellucid-desktop") == "/usr/bin/cellucid-desktop"
    assert linux.quote_exec_arg("/a b") == '"/a b"'
    assert linux.quote_exec_arg("/50%") == "/50%%"


def test_dropping_our_default_keeps_other_handlers_in_mimeapps_list():
    text = ("[Default Applications]\napplication/x-anndata=cellucid-desktop.desktop\n"
            "text/plain=gedit.desktop\n[Added Associations]\n"
            "application/x-anndata=other.desktop;cellucid-desktop.desktop;\n")
    assert linux.drop_association(text) == ("[Default Applications]\ntext/plain=gedit.desktop\n"
                                           "[Added Associations]\napplication/x-anndata=other.desktop;\n")


def test_launch_command_from_a_pip_install_is_the_console_script():
    (command,) = launch_command()  # the venv's entry-point script, a single argv
    assert Path(command).name == "cellucid-desktop" and Path(command).is_file()


def test_committed_installer_files_match_their_generators():
    for rel, text in templates.templates().items():
        committed = (ROOT / "packaging" / rel).read_bytes().decode("utf-8").replace("\r\n", "\n")
        assert committed == text, f"packaging/{rel} is stale: python -m cellucid_desktop.integration.templates packaging"
