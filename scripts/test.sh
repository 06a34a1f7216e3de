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

# Debian's Chromium for the dashboard's browser tests (tests/dashboard), driven by the
# Playwright wheel (never `playwright install`: it downloads a browser build from elsewhere).
# Pinned to the version the tests were written against; Debian's security archive keeps only
# its latest build, so when the pin is gone the current one is taken, with a warning.
CHROMIUM_VERSION="150.0.7871.100-1~deb12u1"
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        apt-get update -qq || true
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "chromium=$CHROMIUM_VERSION" >/dev/null; then
            echo "warning: chromium $CHROMIUM_VERSION is not available; installing the current build" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || true
        fi
    fi
    if [ ! -x /usr/bin/chromium ]; then
        echo "warning: /usr/bin/chromium could not be installed (needs root and apt-get);" \
            "the dashboard's browser tests will be skipped" >&2
    fi
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
# Two workers, file by file (tests/support/worker_scopes.py): one waits out the live modules'
# minute of real time while the other runs the rest. PYTEST_WORKERS=0 runs in one process.
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
