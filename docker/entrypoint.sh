#!/bin/sh
# One image, three roles. docker-compose.yml passes the role as the command:
#   web      gunicorn serving wsgi:app
#   worker   one Celery worker process (concurrency 1: one network per GPU, one job at a time)
#   migrate  bring the database to the latest migration, then make sure the admin account exists
# Anything else is executed as given (for example `docker run IMAGE flask --app app create-user ...`).
# The stack test (tests/stack/test_stack.py) runs this same script as a local process for each role,
# so keep it POSIX sh and free of container-only paths.
set -eu

# The code lives beside this script's folder, in the image (/app) and in a checkout alike.
cd "$(dirname "$0")/.."

role="${1:-web}"
if [ "$#" -gt 0 ]; then
    shift
fi

case "$role" in
    web)
        # exec: gunicorn replaces this shell, so the SIGTERM of `docker stop` reaches it directly.
        exec gunicorn \
            --bind "${BREASTAPP_BIND:-0.0.0.0:${PORT:-8000}}" \
            --workers "${WEB_CONCURRENCY:-2}" \
            --timeout "${GUNICORN_TIMEOUT:-60}" \
            --graceful-timeout 30 \
            --access-logfile - \
            --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
            "$@" \
            wsgi:app
        ;;
    worker)
        # Prefetch 1 with late acks (set in the app's Celery config): a worker holds at most the job it
        # is running, so a killed worker gives back one job and the others stay queued for its peers.
        exec celery -A wsgi:celery_app worker \
            --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
            --pool prefork \
            --concurrency "${WORKER_CONCURRENCY:-1}" \
            --prefetch-multiplier 1 \
            --without-gossip --without-mingle \
            "$@"
        ;;
    migrate)
        # The production start-up check refuses a database behind the migrations; upgrading is the
        # one command that must run in that state.
        BREASTAPP_SKIP_MIGRATION_CHECK=1 flask --app app db upgrade
        exec flask --app app init-admin "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
