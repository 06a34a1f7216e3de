#!/usr/bin/env bash
# Run the Function App on this machine, one command from a fresh clone: Azurite (the storage
# emulator) and the app, on Core Tools (`func start`) when it can be had, else on the local
# durable host that ships with the project (python -m local_durable_host).
#
# Usage: scripts/run-local.sh [extra `func start` arguments, e.g. --verbose]
#
# What it does, in order (see docs/local-development.md):
#   1. checks, before starting anything: Python 3.11 or 3.12, Node + npm, and that the Azurite
#      and app ports are free;
#   2. creates or updates .venv with the runtime dependencies (requirements.txt, only when it
#      changed since the last install: .venv/.run-local-requirements), runs `npm ci`
#      when node_modules is missing or older than package-lock.json, writes
#      local.settings.json from local.settings.example.json when it is missing, and makes this
#      machine's own keys in it (sealing, fingerprints, webhook signing, the local host's);
#   3. picks the host: `func` v4 on PATH; else Core Tools installed into .tools/ by npm (pinned,
#      no global install, no sudo); else, when that cannot be had (no network to its download,
#      an unsupported platform), the local durable host;
#   4. starts Azurite on 127.0.0.1 with its data in .azurite/ and waits until it says it listens
#      on each port (its own log) and the ports answer: never another process's storage;
#   5. runs the app; when it exits, or on Ctrl-C, Azurite is stopped too; when Azurite stops
#      on its own, the app is stopped.
#
# Settings (environment variables):
#   SCHEDULER_HOST=auto            auto | func | local: force Core Tools or the local durable host
#   CORE_TOOLS_INSTALL_TIMEOUT=300 seconds the npm install of Core Tools may take
#   AZURITE_BLOB_PORT=10000 AZURITE_QUEUE_PORT=10001 AZURITE_TABLE_PORT=10002
#   FUNC_PORT=7071                 port of the app
#   PYTHON=python3.11              the interpreter that creates .venv (default: first 3.11/3.12 found)
#   AZURITE_START_TIMEOUT=30       seconds to wait for Azurite to answer
set -euo pipefail
cd "$(dirname "$0")/.."

AZURITE_BLOB_PORT="${AZURITE_BLOB_PORT:-10000}"
AZURITE_QUEUE_PORT="${AZURITE_QUEUE_PORT:-10001}"
AZURITE_TABLE_PORT="${AZURITE_TABLE_PORT:-10002}"
FUNC_PORT="${FUNC_PORT:-7071}"
AZURITE_START_TIMEOUT="${AZURITE_START_TIMEOUT:-30}"
SCHEDULER_HOST="${SCHEDULER_HOST:-auto}"
CORE_TOOLS_DIR=.tools/core-tools
CORE_TOOLS_INSTALL_TIMEOUT="${CORE_TOOLS_INSTALL_TIMEOUT:-300}"
AZURITE_DIR=.azurite
VENV=.venv
VENV_BIN="$VENV/bin"
case "$(uname -s)" in MINGW* | MSYS* | CYGWIN*) VENV_BIN="$VENV/Scripts" ;; esac

say() { printf '==> %s\n' "$*"; }
fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# 1. Checks. Nothing is installed or started before all of them pass.
# ---------------------------------------------------------------------------------------------

case "$SCHEDULER_HOST" in
    auto | func | local) ;;
    *) fail "SCHEDULER_HOST must be auto, func or local, not '$SCHEDULER_HOST'." ;;
esac

# The Functions Python worker runs 3.10-3.12; this project needs 3.11+ (pyproject.toml).
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null
}
if [ -n "${PYTHON:-}" ]; then
    python_ok "$PYTHON" || fail "PYTHON=$PYTHON is not Python 3.11 or 3.12 (the Functions worker runs 3.10-3.12; this project needs 3.11+)."
else
    for candidate in python3.11 python3.12 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            PYTHON="$candidate"
            break
        fi
    done
    [ -n "${PYTHON:-}" ] || fail "Python 3.11 (or 3.12) not found. Install Python 3.11 (python.org, 'brew install python@3.11', 'winget install Python.Python.3.11' or your package manager) or point PYTHON at one: PYTHON=/path/to/python3.11 $0"
fi
if [ -x "$VENV_BIN/python" ] && ! python_ok "$VENV_BIN/python"; then
    fail "$VENV was made with $("$VENV_BIN/python" -V 2>&1); the Function App needs Python 3.11 or 3.12. Remove it (rm -rf $VENV) and run this script again."
fi

command -v node >/dev/null 2>&1 || fail "Node.js not found; Azurite needs it. Install Node 20 LTS from https://nodejs.org (or 'brew install node@20', 'winget install OpenJS.NodeJS.LTS')."
command -v npm >/dev/null 2>&1 || fail "npm not found; it comes with Node.js (https://nodejs.org)."
[ -f package-lock.json ] || fail "package-lock.json is missing; it pins Azurite. Restore it from git (git checkout -- package-lock.json)."

# A port is taken when something on this machine accepts a connection on it.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_port_free() { # port, what, the variable that moves it
    if port_in_use "$1"; then
        {
            echo "error: port $1 ($2) is already in use."
            echo "  Who holds it: lsof -nP -iTCP:$1 -sTCP:LISTEN    (Windows: netstat -ano | findstr :$1)"
            echo "  Often it is another Azurite (VS Code extension, Docker, an earlier run) or another func."
            echo "  Stop that process, or run on other ports: $3=<free port> $0"
        } >&2
        exit 1
    fi
}
check_port_free "$AZURITE_BLOB_PORT" "Azurite blob" AZURITE_BLOB_PORT
check_port_free "$AZURITE_QUEUE_PORT" "Azurite queue" AZURITE_QUEUE_PORT
check_port_free "$AZURITE_TABLE_PORT" "Azurite table" AZURITE_TABLE_PORT
check_port_free "$FUNC_PORT" "the app" FUNC_PORT

# ---------------------------------------------------------------------------------------------
# 2. Dependencies and settings.
# ---------------------------------------------------------------------------------------------

if [ ! -x "$VENV_BIN/python" ]; then
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
# pip only when requirements.txt changed since it last installed it: a start with nothing new
# to install costs no pip run (seconds of resolving against the index).
REQUIREMENTS_STAMP="$VENV/.run-local-requirements"
if ! cmp -s requirements.txt "$REQUIREMENTS_STAMP"; then
    say "installing runtime dependencies (requirements.txt) into $VENV"
    "$VENV_BIN/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    cp requirements.txt "$REQUIREMENTS_STAMP"
fi

if [ ! -x node_modules/.bin/azurite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing Azurite (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f local.settings.json ]; then
    say "writing local.settings.json from local.settings.example.json"
    cp local.settings.example.json local.settings.json
else
    # Settings added to the example since local.settings.json was written are not in it.
    missing="$("$VENV_BIN/python" - 2>/dev/null <<'EOF'
import json
with open("local.settings.example.json") as f:
    example = json.load(f)["Values"]
with open("local.settings.json") as f:
    mine = json.load(f).get("Values", {})
print(" ".join(sorted(set(example) - set(mine))))
EOF
)" || fail "local.settings.json is not valid JSON; fix it, or delete it to have it written again from local.settings.example.json."
    if [ -n "$missing" ]; then
        echo "warning: local.settings.json lacks settings that local.settings.example.json has: $missing" >&2
        echo "         (defaults apply; add them, or delete local.settings.json to have it written again)" >&2
    fi
fi

# Payloads are sealed, idempotent requests fingerprinted and the local host's routes guarded
# with keys of this machine's own, made once and kept in local.settings.json (git-ignored,
# readable by its owner only): never a key shared in the repo. Keys published in the repo's
# history (the example's old values) are replaced: any web page could send them.
"$VENV_BIN/python" - <<'EOF' || fail "could not write the local keys into local.settings.json"
import base64, json, os, secrets
with open("local.settings.json") as f:
    settings = json.load(f)
values = settings.setdefault("Values", {})
made = []
published = {"LOCAL_HOST_FUNCTION_KEY": "local-function-key", "LOCAL_HOST_MASTER_KEY": "local-master-key"}
for name, known in published.items():
    if values.get(name, "") in ("", known):
        values[name] = secrets.token_urlsafe(32)
        made.append(name)
if not values.get("SEALING_KEYS") and not values.get("SEALING_KEY_VAULT_KEY_URL"):
    values["SEALING_KEYS"] = "local1:" + base64.b64encode(os.urandom(32)).decode()
    made.append("SEALING_KEYS")
if not values.get("REQUEST_FINGERPRINT_KEY"):
    values["REQUEST_FINGERPRINT_KEY"] = base64.b64encode(os.urandom(32)).decode()
    made.append("REQUEST_FINGERPRINT_KEY")
if not values.get("WEBHOOK_SIGNING_SECRETS"):
    # Deliveries are signed as in Azure, so a receiver's verification can be tried locally.
    values["WEBHOOK_SIGNING_SECRETS"] = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    made.append("WEBHOOK_SIGNING_SECRETS")
if made:
    with open("local.settings.json", "w") as f:
        json.dump(settings, f, indent=2)
    print("==> made local keys in local.settings.json: " + ", ".join(made))
os.chmod("local.settings.json", 0o600)
EOF

# ---------------------------------------------------------------------------------------------
# 3. The host: Core Tools when it can be had, else the local durable host.
# ---------------------------------------------------------------------------------------------

core_tools_v4() { # command
    case "$("$1" --version 2>/dev/null | head -n 1 || true)" in 4.*) return 0 ;; *) return 1 ;; esac
}
FUNC=""
if [ "$SCHEDULER_HOST" != local ]; then
    if command -v func >/dev/null 2>&1 && core_tools_v4 func; then
        FUNC=func
    elif [ -x "$CORE_TOOLS_DIR/node_modules/.bin/func" ] && core_tools_v4 "$CORE_TOOLS_DIR/node_modules/.bin/func"; then
        FUNC="$CORE_TOOLS_DIR/node_modules/.bin/func"
    elif [ -f "$CORE_TOOLS_DIR/unavailable" ] && [ "$SCHEDULER_HOST" = auto ]; then
        # One failed install is enough: every start would otherwise pay for another.
        say "Core Tools could not be installed here before ($CORE_TOOLS_DIR/unavailable);" \
            "delete that file or set SCHEDULER_HOST=func to try again"
    else
        say "Core Tools v4 is not on PATH: installing it into $CORE_TOOLS_DIR/ (npm, this project only)"
        mkdir -p "$CORE_TOOLS_DIR"
        # Its install script downloads the host from Microsoft's servers: that is what fails
        # on a machine that reaches only package registries, or hangs where a firewall drops
        # the connection silently; CORE_TOOLS_INSTALL_TIMEOUT bounds it.
        npm install --prefix "$CORE_TOOLS_DIR" azure-functions-core-tools@4.15.1 \
            --no-save --no-audit --no-fund --loglevel=error >"$CORE_TOOLS_DIR/install.log" 2>&1 &
        install_pid=$!
        waited=0
        while kill -0 "$install_pid" 2>/dev/null && [ "$waited" -lt $((CORE_TOOLS_INSTALL_TIMEOUT * 2)) ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        timed_out=""
        kill -0 "$install_pid" 2>/dev/null && timed_out=yes
        kill "$install_pid" 2>/dev/null || true
        install_status=0
        wait "$install_pid" || install_status=$?
        if [ "$install_status" = 0 ] && core_tools_v4 "$CORE_TOOLS_DIR/node_modules/.bin/func"; then
            FUNC="$CORE_TOOLS_DIR/node_modules/.bin/func"
            rm -f "$CORE_TOOLS_DIR/unavailable"
        else
            echo "warning: Core Tools could not be installed (its log: $CORE_TOOLS_DIR/install.log)." >&2
            if [ -n "$timed_out" ]; then
                echo "  It did not finish within CORE_TOOLS_INSTALL_TIMEOUT=${CORE_TOOLS_INSTALL_TIMEOUT}s." >&2
            else
                # The installer's own error handler fails (TypeError: chalk.red is not a
                # function) and that ends its log, hiding the reason it was about to print:
                # the lines before it say why (a download refused, a name not resolved...).
                awk '/chalk|TypeError/ { exit } { print }' "$CORE_TOOLS_DIR/install.log" 2>/dev/null |
                    grep -v -e '^[[:space:]]*at ' -e '^npm ERR!' -e '^npm error' -e '^[[:space:]]*$' |
                    tail -n 3 | sed 's/^/  reason: /' >&2 || true
            fi
            rm -rf "$CORE_TOOLS_DIR/node_modules"
            date -u >"$CORE_TOOLS_DIR/unavailable"
        fi
    fi
    if [ -z "$FUNC" ] && [ "$SCHEDULER_HOST" = func ]; then
        fail "SCHEDULER_HOST=func, but Core Tools v4 is neither on PATH nor installable here."
    fi
fi
if [ -z "$FUNC" ]; then
    say "using the local durable host (python -m local_durable_host): see docs/local-development.md"
fi

# UseDevelopmentStorage=true means the default ports; on other ports say where Azurite is.
# `func start` prefers an environment variable over the same name in local.settings.json.
if [ "$AZURITE_BLOB_PORT:$AZURITE_QUEUE_PORT:$AZURITE_TABLE_PORT" != "10000:10001:10002" ]; then
    # The well-known, public development account of Azurite (not a secret).
    dev_key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    export AzureWebJobsStorage="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$dev_key;BlobEndpoint=http://127.0.0.1:$AZURITE_BLOB_PORT/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$AZURITE_QUEUE_PORT/devstoreaccount1;TableEndpoint=http://127.0.0.1:$AZURITE_TABLE_PORT/devstoreaccount1;"
fi

# ---------------------------------------------------------------------------------------------
# 4. Azurite, stopped again however this script ends.
# ---------------------------------------------------------------------------------------------

AZURITE_PID=""
FUNC_PID=""
EXIT_STATUS=""
STOP_GRACE_HALF_SECONDS=20 # how long a stopped group may take before it is killed

# Azurite and func each run in a process group of their own (`set -m` below), whose id is
# their pid; stopping the group also stops what they started (func's Python worker).
# shellcheck disable=SC2317  # runs from the cleanup below
stop_group() { # process group id, name
    local group="$1" name="$2" waited=0
    kill -0 -- "-$group" 2>/dev/null || return 0
    say "stopping $name"
    kill -TERM -- "-$group" 2>/dev/null
    while kill -0 -- "-$group" 2>/dev/null && [ "$waited" -lt "$STOP_GRACE_HALF_SECONDS" ]; do
        sleep 0.5
        waited=$((waited + 1))
    done
    kill -KILL -- "-$group" 2>/dev/null
    wait "$group" 2>/dev/null
}
# shellcheck disable=SC2317  # runs from the traps below
cleanup() {
    local status=$?
    set +e             # stop everything, whatever fails on the way
    trap '' INT PIPE   # a second Ctrl-C, or a closed terminal pipe, must not cut this short
    trap - EXIT TERM HUP
    [ -n "$FUNC_PID" ] && stop_group "$FUNC_PID" "the app's host"
    [ -n "$AZURITE_PID" ] && stop_group "$AZURITE_PID" "Azurite"
    exit "${EXIT_STATUS:-$status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

mkdir -p "$AZURITE_DIR"
say "starting Azurite on 127.0.0.1:$AZURITE_BLOB_PORT/$AZURITE_QUEUE_PORT/$AZURITE_TABLE_PORT (data in $AZURITE_DIR/, log in $AZURITE_DIR/azurite.log)"
# `set -m` puts Azurite in a process group of its own: Ctrl-C reaches this script, not
# Azurite, and the cleanup stops the whole group. --skipApiVersionCheck: recent Azure SDKs
# send an API version newer than Azurite knows; --loose: ignore headers Azurite does not support;
# --disableTelemetry: Azurite would otherwise send usage data.
set -m
node_modules/.bin/azurite \
    --blobHost 127.0.0.1 --blobPort "$AZURITE_BLOB_PORT" \
    --queueHost 127.0.0.1 --queuePort "$AZURITE_QUEUE_PORT" \
    --tableHost 127.0.0.1 --tablePort "$AZURITE_TABLE_PORT" \
    --location "$AZURITE_DIR" --skipApiVersionCheck --loose --silent --disableTelemetry \
    </dev/null >"$AZURITE_DIR/azurite.log" 2>&1 &
AZURITE_PID=$!
set +m

# A port that answers is not proof enough: another process may have taken one between the
# check above and Azurite's start, and then the app would run against that process's storage.
# The proof is our Azurite's own word, in its log of this run, that it listens on each port
# (Azurite prints it once its server is bound: src/azurite.ts), while it is still running.
azurite_listens_on() { # port
    grep -qE "successfully listening at http://127\.0\.0\.1:$1\$" "$AZURITE_DIR/azurite.log" 2>/dev/null
}
azurite_failed() { # why
    tail -n 20 "$AZURITE_DIR/azurite.log" >&2 || true
    if grep -q EADDRINUSE "$AZURITE_DIR/azurite.log" 2>/dev/null; then
        fail "Azurite could not listen on one of ports $AZURITE_BLOB_PORT/$AZURITE_QUEUE_PORT/$AZURITE_TABLE_PORT: another process took it after this script checked it was free. Stop that process (lsof -nP -iTCP:<port> -sTCP:LISTEN) or choose other ports, and start again."
    fi
    fail "$1; its log is above ($AZURITE_DIR/azurite.log)."
}
waited=0
until azurite_listens_on "$AZURITE_BLOB_PORT" && azurite_listens_on "$AZURITE_QUEUE_PORT" && azurite_listens_on "$AZURITE_TABLE_PORT"; do
    kill -0 "$AZURITE_PID" 2>/dev/null || azurite_failed "Azurite exited while starting"
    if [ "$waited" -ge $((AZURITE_START_TIMEOUT * 2)) ]; then
        azurite_failed "Azurite did not listen on ports $AZURITE_BLOB_PORT/$AZURITE_QUEUE_PORT/$AZURITE_TABLE_PORT within ${AZURITE_START_TIMEOUT}s"
    fi
    sleep 0.5
    waited=$((waited + 1))
done
if ! kill -0 "$AZURITE_PID" 2>/dev/null || ! port_in_use "$AZURITE_BLOB_PORT" || ! port_in_use "$AZURITE_QUEUE_PORT" || ! port_in_use "$AZURITE_TABLE_PORT"; then
    azurite_failed "Azurite said it listens, then stopped answering"
fi
say "Azurite is up (process $AZURITE_PID, listening on $AZURITE_BLOB_PORT/$AZURITE_QUEUE_PORT/$AZURITE_TABLE_PORT)"

# ---------------------------------------------------------------------------------------------
# 5. The Function App. Ctrl-C or a TERM is passed on to the host, which shuts down cleanly.
# ---------------------------------------------------------------------------------------------

# func starts the Python worker with the `python` it finds first on PATH: the venv's.
export VIRTUAL_ENV="$PWD/$VENV"
export PATH="$PWD/$VENV_BIN:$PATH"

set -m
if [ -n "$FUNC" ]; then
    say "starting func on http://localhost:$FUNC_PORT/api/ (Ctrl-C stops func and Azurite)"
    say "  keys: func start does not check them (the local durable host and Azure do)"
    say "  webhook signing secret: WEBHOOK_SIGNING_SECRETS in local.settings.json (docs/webhooks.md)"
    say "  state: Azurite's data in $AZURITE_DIR/ (delete it to start empty)"
    "$FUNC" start --port "$FUNC_PORT" "$@" </dev/null &
else
    say "starting the local durable host on http://127.0.0.1:$FUNC_PORT (Ctrl-C stops it and Azurite)"
    [ "$#" -eq 0 ] || echo "warning: arguments for func start are ignored by the local durable host: $*" >&2
    "$VENV_BIN/python" -m local_durable_host --port "$FUNC_PORT" </dev/null &
fi
FUNC_PID=$!
set +m

# The first Ctrl-C (or TERM) asks func to shut down cleanly; a second one stops it at once.
# shellcheck disable=SC2317  # runs from the traps below
forward() { # signal, exit status
    if [ -n "$EXIT_STATUS" ]; then
        STOP_GRACE_HALF_SECONDS=2
        exit "$EXIT_STATUS"
    fi
    EXIT_STATUS="$2"
    say "asking the host to shut down (Ctrl-C again to force)"
    kill "-$1" -- "-$FUNC_PID" 2>/dev/null || true
}
trap 'forward INT 130' INT
trap 'forward TERM 143' TERM
trap 'forward HUP 129' HUP

# Until the host exits. Should Azurite stop while the app runs (killed, crashed), the app is
# stopped too: it would otherwise go on without storage, or with whatever takes the port,
# and a killed Azurite loses writes it acknowledged in its last seconds (see
# docs/local-development.md, "What survives a kill").
while kill -0 "$FUNC_PID" 2>/dev/null; do
    if [ -z "$EXIT_STATUS" ] && ! kill -0 "$AZURITE_PID" 2>/dev/null; then
        {
            echo "error: Azurite (process $AZURITE_PID) stopped while the app was running; stopping the app."
            echo "  A killed Azurite keeps what it had saved (every 5 s): writes it acknowledged after that are"
            echo "  lost, so jobs accepted, claimed or deleted just before may be gone or fire again (receivers:"
            echo "  de-duplicate on X-Scheduler-Transaction-Id / webhook-id). See docs/local-development.md."
            echo "  Start again with $0."
        } >&2
        EXIT_STATUS=1
        kill -TERM -- "-$FUNC_PID" 2>/dev/null || true
    fi
    # A background sleep, so that a signal is handled at once (`wait` returns for it).
    sleep 0.5 &
    wait $! || true
done
func_status=0
wait "$FUNC_PID" || func_status=$?
exit "${EXIT_STATUS:-$func_status}"
