"""`cellucid-desktop integrate` on a pip install, with the real freedesktop tools, in this
test's own XDG_DATA_HOME / XDG_CONFIG_HOME (set by the autouse fixture)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, env=os.environ)


def integrate(*args: str) -> subprocess.CompletedProcess:
    result = run(sys.executable, "-m", "cellucid_desktop", "integrate", *args)
    assert result.returncode == 0, result.stderr
    return result


DATASETS = {"h5ad": "application/x-anndata", "h5mu": "application/x-mudata",
            "loom": "application/x-loom", "zarr.zip": "application/x-anndata-zarr-zip"}
SOURCES = {"h5mu": "h5mu-citeseq-rna", "loom": "loom-loompy", "zarr.zip": "zarr-v3-zip"}


def test_integrate_registers_menu_entry_icon_and_h5ad_type_then_remove_undoes_it(small_h5ad, tmp_path):
    data_home = Path(os.environ["XDG_DATA_HOME"])
    dataset = tmp_path / "cells.h5ad"
    shutil.copy(small_h5ad, dataset)
    assert run("xdg-mime", "query", "filetype", str(dataset)).stdout.strip() != "application/x-anndata"

    integrate()
    entry = data_home / "applications" / "cellucid-desktop.desktop"
    validate = run("desktop-file-validate", str(entry))
    assert validate.returncode == 0 and not validate.stdout, validate.stdout
    exec_line = next(line for line in entry.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line == f"Exec={Path(sys.executable).parent / 'cellucid-desktop'} %F"
    assert (data_home / "icons/hicolor/256x256/apps/cellucid-desktop.png").is_file()
    assert (data_home / "icons/hicolor/scalable/apps/cellucid-desktop.svg").is_file()
    assert run("xdg-mime", "query", "filetype", str(dataset)).stdout.strip() == "application/x-anndata"
    assert run("xdg-mime", "query", "default", "application/x-anndata").stdout.strip() == "cellucid-desktop.desktop"
    # the "Open with" list GLib builds for the file (what file managers show)
    assert "cellucid-desktop.desktop" in run("gio", "mime", "application/x-anndata").stdout

    integrate("--remove")
    assert not entry.exists()
    assert not (data_home / "icons/hicolor/256x256/apps/cellucid-desktop.png").exists()
    assert run("xdg-mime", "query", "filetype", str(dataset)).stdout.strip() != "application/x-anndata"
    assert run("xdg-mime", "query", "default", "application/x-anndata").stdout.strip() == ""


def test_integrate_no_default_lists_the_app_without_writing_a_default():
    integrate("--no-default")
    mimeapps = Path(os.environ["XDG_CONFIG_HOME"]) / "mimeapps.list"
    assert not mimeapps.exists() or "cellucid" not in mimeapps.read_text()
    assert "cellucid-desktop.desktop" in run("gio", "mime", "application/x-anndata").stdout


def test_integrate_types_every_dataset_file_by_its_ending(format_cases, small_h5ad, tmp_path):
    """MuData, loom and zipped Zarr files get their own types, the app as their default
    (a zipped store's longer glob wins over *.zip); the files come from the real writers."""
    files = {}
    for ending in DATASETS:
        source = format_cases[SOURCES[ending]].path if ending in SOURCES else small_h5ad
        files[ending] = Path(shutil.copy(source, tmp_path / f"data.{ending}"))
    integrate()
    for ending, mime in DATASETS.items():
        assert run("xdg-mime", "query", "filetype", str(files[ending])).stdout.strip() == mime
        assert run("xdg-mime", "query", "default", mime).stdout.strip() == "cellucid-desktop.desktop"
    integrate("--remove")
    for ending, mime in DATASETS.items():
        assert run("xdg-mime", "query", "default", mime).stdout.strip() == ""
