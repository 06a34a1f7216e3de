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

# checkov (the infra/ lint run by tests/infra/test_checkov.py) lives in its own venv:
# its dependencies clash with the app's pins. Re-installed only when the pin changes.
CHECKOV_VENV=.venv-tools/checkov
if [ ! -x "$CHECKOV_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$CHECKOV_VENV"
fi
if ! cmp -s requirements-tools.txt "$CHECKOV_VENV/.installed-requirements"; then
    "$CHECKOV_VENV/bin/python" -m pip install -qq --disable-pip-version-check -r requirements-tools.txt
    cp requirements-tools.txt "$CHECKOV_VENV/.installed-requirements"
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy .
echo "== pytest"
.venv/bin/python -m pytest "$@"
