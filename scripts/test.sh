#!/usr/bin/env bash
# The README's second command: install everything the tests need, then run the whole suite.
#
#   scripts/test.sh                   # every test under tests/
#   scripts/test.sh tests/stack -x    # arguments go to pytest
#
# Besides the virtual environment (requirements-dev.txt) the suite needs, on this machine:
#   - Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database
#     test) for the worker and stack tests: started here when they are down, installed when missing;
#   - Debian's chromium for the browser test: installed when /usr/bin/chromium is missing.
# Installing needs root (apt-get); as another user, install those packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/common.sh
. scripts/lib/common.sh

APT_UPDATED=0

as_root() {
    if [ "$(id -u)" = "0" ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root"
    fi
}

apt_install() {
    if [ "$APT_UPDATED" = "0" ]; then
        as_root apt-get update -q
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        return 0
    fi
    say "installing Debian's chromium and chromium-driver for the browser test"
    apt_install chromium chromium-driver
}

ensure_redis() {
    if port_open 127.0.0.1 6379; then
        return 0
    fi
    if ! command -v redis-server >/dev/null; then
        say "installing redis-server"
        apt_install redis-server
    fi
    say "starting Redis on 127.0.0.1:6379"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for_port 127.0.0.1 6379 30 || die "Redis did not start (see /var/log/redis/ci.log)"
}

ensure_postgres() {
    if ! port_open 127.0.0.1 5432; then
        if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
            say "installing PostgreSQL"
            apt_install postgresql
            allow_local_trust
        fi
        say "starting PostgreSQL on 127.0.0.1:5432"
        # shellcheck disable=SC2046  # one cluster version folder, as Debian lays it out
        as_root pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
        wait_for_port 127.0.0.1 5432 60 || die "PostgreSQL did not start"
    fi
    ensure_test_database
}

# A PostgreSQL we installed ourselves gets the test set-up this suite expects: trust auth on loopback.
allow_local_trust() {
    local hba
    hba="$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)"
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
}

ensure_test_database() {
    local psql_cmd=(psql -h 127.0.0.1 -U postgres -d postgres -tAq)
    if ! command -v psql >/dev/null; then
        return 0  # the tests say what is wrong if the database is really missing
    fi
    if [ "$("${psql_cmd[@]}" -c "select 1 from pg_database where datname = 'test'" 2>/dev/null)" != "1" ]; then
        say "creating the PostgreSQL database 'test'"
        "${psql_cmd[@]}" -c "create database test" || die "could not create the database 'test'"
    fi
}

ensure_venv requirements-dev.txt
ensure_chromium
ensure_redis
ensure_postgres

export PATH="$VENV_DIR/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

say "running the test suite"
exec "$VENV_DIR/bin/python" -m pytest "$@"
