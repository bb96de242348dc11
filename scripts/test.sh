#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh -k protocol).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/venv.sh gui,test
exec .venv/bin/python -m pytest "$@"
