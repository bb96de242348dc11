#!/usr/bin/env bash
# Install Cellucid Desktop into .venv and start it; arguments go to cellucid-desktop.
# Example: scripts/run.sh serve --demo
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then scripts/system-packages.sh; fi
scripts/venv.sh gui
exec .venv/bin/cellucid-desktop "$@"
