#!/usr/bin/env bash
# Build "Cellucid Desktop.app" (PyInstaller BUNDLE; Info.plist from
# cellucid_desktop/integration/macos.py) and a .dmg. Run on macOS; PyInstaller does not
# cross-compile. Needs: python3 -m venv .venv && .venv/bin/pip install -e ".[gui,packaging]"
# Usage: packaging/build-macos.sh [OUT_DIR]          (default: build/macos)
# Not run here (no macOS machine); see docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(cd "$(dirname "${1:-build/macos}")" && pwd)/$(basename "${1:-build/macos}")"
py="${PYTHON:-.venv/bin/python}"

"$py" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$out/dist" --workpath "$out/work" packaging/cellucid-desktop.spec

app="$out/dist/Cellucid Desktop.app"
plutil -lint "$app/Contents/Info.plist"
version="$("$app/Contents/MacOS/cellucid-desktop" --version | awk '{print $2}')"
# Ad-hoc signature so Gatekeeper on Apple silicon runs it locally; a release needs a
# Developer ID (codesign --sign "Developer ID Application: ...") and notarisation.
codesign --force --deep --sign - "$app"
hdiutil create -volname "Cellucid Desktop" -srcfolder "$app" -ov -format UDZO \
  "$out/cellucid-desktop-$version-macos-$(uname -m).dmg"
echo "built $app and $out/cellucid-desktop-$version-macos-$(uname -m).dmg"
