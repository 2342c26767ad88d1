#!/usr/bin/env bash
# The README's first command: install, create the database and the admin account, then run the web
# server AND a real Celery worker on the embedded defaults (SQLite and a file-system broker, both under
# instance/), so an upload takes the same path to its result as in production. Ctrl-C stops both.
#
#   scripts/run-local.sh                      # http://127.0.0.1:8000
#   PORT=8080 scripts/run-local.sh
#   BREASTAPP_ADMIN_PASSWORD=... scripts/run-local.sh   # choose the admin password instead of a generated one
#
# Every BREASTAPP_* / DATABASE_URL / BROKER_URL variable of the README's configuration reference is
# passed through, so the same script also runs against PostgreSQL and Redis.
# BREASTAPP_SKIP_INSTALL=1 uses .venv as it is (the test of this script sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

if [ "${BREASTAPP_SKIP_INSTALL:-0}" != "1" ]; then
    ensure_venv requirements.txt
fi
[ -x "$VENV_DIR/bin/python" ] || die "no virtual environment at $VENV_DIR"
export PATH="$VENV_DIR/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

# instance/ holds the SQLite database, the broker's folders and the secret key (the app's defaults).
INSTANCE_DIR="${BREASTAPP_INSTANCE_DIR:-instance}"
mkdir -p "$INSTANCE_DIR"
chmod 700 "$INSTANCE_DIR"

# A random secret key, made once and kept in instance/ (git-ignored), unless one is given.
if [ -z "${BREASTAPP_SECRET_KEY:-}" ]; then
    if [ ! -s "$INSTANCE_DIR/secret_key" ]; then
        (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(48))' > "$INSTANCE_DIR/secret_key")
    fi
    BREASTAPP_SECRET_KEY="$(cat "$INSTANCE_DIR/secret_key")"
    export BREASTAPP_SECRET_KEY
fi

# Missing weights do not stop the web server, but every analysis would fail: say so loudly, now.
python scripts/check_weights.py || true

say "creating or upgrading the database, and the admin account"
docker/entrypoint.sh migrate

web_pid=""
worker_pid=""

stop_all() {
    trap - INT TERM
    say "stopping the web server and the worker"
    for pid in $web_pid $worker_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # The worker finishes the job it holds before it exits (warm shutdown); a second Ctrl-C hurries it.
    for pid in $web_pid $worker_pid; do
        wait "$pid" 2>/dev/null || true
    done
}

on_signal() {
    stop_all
    exit 130
}
trap on_signal INT TERM

say "starting the Celery worker"
docker/entrypoint.sh worker --hostname "local@%h" &
worker_pid=$!

say "starting the web server on http://$HOST:$PORT"
BREASTAPP_BIND="$HOST:$PORT" WEB_CONCURRENCY="${WEB_CONCURRENCY:-2}" docker/entrypoint.sh web &
web_pid=$!

if python scripts/wait_http.py "http://$HOST:$PORT/healthz" 60; then
    say "ready: open http://$HOST:$PORT and log in as admin (Ctrl-C stops the web server and the worker)"
fi

# Whichever process ends first (a crash, a port already taken) takes the other one down with it.
status=0
wait -n "$web_pid" "$worker_pid" || status=$?
say "a process ended (status $status)"
stop_all
exit "$status"
