#!/usr/bin/env bash
# Build the Linux one-folder bundle (PyInstaller) and, unless --no-tarball, its .tar.gz.
# Usage: packaging/build-linux.sh [--no-tarball] [OUT_DIR]        (OUT_DIR default: build/linux)
# Needs the venv with the gui and packaging extras: scripts/venv.sh gui,packaging
# Result: OUT_DIR/dist/cellucid-desktop/cellucid-desktop (run it; `./cellucid-desktop integrate`
# adds the menu entry and the .h5ad association for the current user).
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=1
if [ "${1:-}" = "--no-tarball" ]; then tarball=0; shift; fi
out="$(realpath -m "${1:-build/linux}")"
py="${PYTHON:-.venv/bin/python}"

"$py" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/work" packaging/cellucid-desktop.spec

bundle="$out/dist/cellucid-desktop"
# Strip debug info from the bundled libraries that carry it (pyenv's libpython is 23 MB
# unstripped, 6 MB stripped). Not the auditwheel-repaired libraries in `*.libs/`: patchelf
# left their load segments in a layout strip breaks ("ELF load command ... not
# page-aligned", numpy's OpenBLAS). Not the executable either: its archive is appended.
find "$bundle/_internal" -type f -not -path '*.libs/*' -print0 | xargs -0 file -N \
  | awk -F': ' '/ELF .*not stripped/ {print $1}' | xargs -r -d '\n' strip --strip-unneeded
version="$("$bundle/cellucid-desktop" --version | awk '{print $2}')"
echo "built $bundle ($(du -sh "$bundle" | cut -f1), version $version)"
if [ "$tarball" = 1 ]; then
  tarball_path="$out/cellucid-desktop-$version-linux-$(uname -m).tar.gz"
  tar -C "$out/dist" -czf "$tarball_path" cellucid-desktop
  echo "packed $tarball_path ($(du -sh "$tarball_path" | cut -f1))"
fi
