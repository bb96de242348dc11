"""Linux: menu entry, icon and dataset MIME types for the current user (XDG base dirs).

Writes under ``$XDG_DATA_HOME`` (default ``~/.local/share``):
  applications/cellucid-desktop.desktop, mime/packages/cellucid-desktop.xml,
  icons/hicolor/<N>x<N>/apps/cellucid-desktop.png and scalable/apps/cellucid-desktop.svg
then refreshes the caches and makes the app the default for the dataset types
(`.h5ad`, `.h5mu`, `.loom`, `.zarr.zip`) with the freedesktop tools, when installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cellucid_desktop import assets
from cellucid_desktop.integration import APP_ID, APP_NAME, COMMENT, FILE_TYPES

DESKTOP_FILE = f"{APP_ID}.desktop"
MIME_FILE = f"{APP_ID}.xml"
# Characters that force quoting of an Exec argument (Desktop Entry spec, "The Exec key").
_RESERVED = re.compile(r"""[\s"'\\><~|&;$*?#()`]""")


def quote_exec_arg(arg: str) -> str:
    """One Exec argument, quoted and escaped as the Desktop Entry spec requires.

    Inside double quotes ``"`` ` ``$`` ``\\`` take a backslash; a literal ``%`` is ``%%``;
    and the whole value is then a spec "string", whose backslashes are doubled again.
    """
    arg = arg.replace("%", "%%")
    if _RESERVED.search(arg):
        arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
    return arg.replace("\\", "\\\\")


def desktop_entry(command: list[str]) -> str:
    """The .desktop file that starts ``command`` with the chosen files (``%F``)."""
    exec_line = " ".join(quote_exec_arg(a) for a in command) + " %F"
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        f"Name={APP_NAME}",
        "GenericName=Single-cell viewer",
        f"Comment={COMMENT}",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        f"MimeType={''.join(t.mime + ';' for t in FILE_TYPES)}",
        "Categories=Science;Biology;DataVisualization;",
        "Keywords=single-cell;AnnData;h5ad;MuData;loom;Zarr;UMAP;cellucid;",
        f"StartupWMClass={APP_ID}",
        "",
    ])


_PARENTS = {"hdf5": "application/x-hdf", "zip": "application/zip"}


def mime_xml() -> str:
    """shared-mime-info package: `*.h5ad` is AnnData, a kind of HDF5 file, and so on
    (`*.zarr.zip` outweighs `*.zip`: the longer glob wins)."""
    types = "".join(f"""  <mime-type type="{t.mime}">
    <comment>{t.description}</comment>
    <sub-class-of type="{_PARENTS[t.container]}"/>
    <glob pattern="*.{t.ending}" weight="60"/>
    <generic-icon name="x-office-spreadsheet"/>
  </mime-type>
""" for t in FILE_TYPES)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
{types}</mime-info>
"""


def data_home() -> Path:
    """``$XDG_DATA_HOME`` or ``~/.local/share``."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def config_home() -> Path:
    """``$XDG_CONFIG_HOME`` or ``~/.config`` (where xdg-mime keeps mimeapps.list)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


@dataclass
class Report:
    """What an install or removal did, for the command to print."""

    files: list[Path] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # commands run, files edited
    missing_tools: list[str] = field(default_factory=list)


def _icon_targets(root: Path) -> dict[Path, Path]:
    hicolor = root / "icons" / "hicolor"
    targets = {hicolor / f"{n}x{n}" / "apps" / f"{APP_ID}.png": assets.icon_png(n) for n in assets.ICON_SIZES}
    targets[hicolor / "scalable" / "apps" / f"{APP_ID}.svg"] = assets.icon_svg()
    return targets


def _run(report: Report, argv: list[str]) -> None:
    """Run a freedesktop tool if installed; a failure is reported, not raised."""
    if shutil.which(argv[0]) is None:
        report.missing_tools.append(argv[0])
        return
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {(result.stderr or result.stdout).strip()}")
    report.steps.append("ran " + " ".join(argv))


def _refresh(report: Report, root: Path) -> None:
    _run(report, ["update-mime-database", str(root / "mime")])
    _run(report, ["update-desktop-database", str(root / "applications")])


def install(command: list[str], root: Path | None = None, make_default: bool = True) -> Report:
    """Install the menu entry, icons and MIME type for the current user."""
    root = root or data_home()
    report = Report()
    files = {
        root / "applications" / DESKTOP_FILE: desktop_entry(command),
        root / "mime" / "packages" / MIME_FILE: mime_xml(),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        report.files.append(path)
    for path, source in _icon_targets(root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        report.files.append(path)
    _refresh(report, root)
    if make_default:
        _run(report, ["xdg-mime", "default", DESKTOP_FILE, *(t.mime for t in FILE_TYPES)])
    return report


def remove(root: Path | None = None) -> Report:
    """Undo :func:`install`: delete the files, refresh caches, drop our default."""
    root = root or data_home()
    report = Report()
    paths = [root / "applications" / DESKTOP_FILE, root / "mime" / "packages" / MIME_FILE,
             *_icon_targets(root)]
    for path in paths:
        if path.exists():
            path.unlink()
            report.files.append(path)
    _refresh(report, root)
    mimeapps = config_home() / "mimeapps.list"
    if mimeapps.exists():
        mimeapps.write_text(drop_association(mimeapps.read_text(encoding="utf-8")), encoding="utf-8")
        report.steps.append(f"dropped the dataset types' defaults from {mimeapps}")
    return report


def drop_association(mimeapps: str) -> str:
    """mimeapps.list text without our desktop file as a handler of the dataset types."""
    ours = {t.mime for t in FILE_TYPES}
    out = []
    for line in mimeapps.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() in ours:
            handlers = [h for h in value.split(";") if h.strip() and h.strip() != DESKTOP_FILE]
            if not handlers:
                continue
            line = f"{key}={';'.join(handlers)};"
        out.append(line)
    return "\n".join(out) + "\n"
