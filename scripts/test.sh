#!/usr/bin/env bash
# The whole test suite from a fresh clone: venv, pinned dependencies, lint, types, tests.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "error: $PYTHON not found; install Python 3.11 (Azure Functions supports 3.10-3.12)" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# Azurite and the Cosmos API test server, pinned in package-lock.json; the tests start and stop them.
if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy .
echo "== pytest"
.venv/bin/python -m pytest "$@"
