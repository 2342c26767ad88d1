# Shared by scripts/run-local.sh and scripts/test.sh (sourced, not executed).
# Expects the caller to have cd'ed to the repository root and set -euo pipefail.

VENV_DIR="${BREASTAPP_VENV:-.venv}"
case "$VENV_DIR" in
    /*) ;;
    *) VENV_DIR="$PWD/$VENV_DIR" ;;
esac
PYTHON_FOR_VENV="${PYTHON:-python3}"

say() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# ensure_venv REQUIREMENTS_FILE
# Creates the virtual environment if needed and installs REQUIREMENTS_FILE into it. The install is
# skipped when the requirement files have not changed since the last successful one (a stamp with
# their hash lives inside the venv), so a second run starts in seconds instead of a minute.
ensure_venv() {
    local requirements="$1"
    if [ ! -x "$VENV_DIR/bin/python" ]; then
        command -v "$PYTHON_FOR_VENV" >/dev/null || die "$PYTHON_FOR_VENV not found: install Python 3.11 or set PYTHON"
        "$PYTHON_FOR_VENV" - <<'EOF' || die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
EOF
        say "creating the virtual environment $VENV_DIR"
        "$PYTHON_FOR_VENV" -m venv "$VENV_DIR"
    fi
    local stamp="$VENV_DIR/.installed-$(basename "$requirements").sha256"
    local wanted
    wanted="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        say "$requirements already installed in $VENV_DIR"
        return 0
    fi
    say "installing $requirements into $VENV_DIR (the first time takes a few minutes)"
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$wanted" > "$stamp"
}

# port_open HOST PORT: true when something accepts TCP connections there (bash's /dev/tcp, no tools needed).
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port HOST PORT SECONDS
wait_for_port() {
    local host="$1" port="$2" seconds="$3" waited=0
    until port_open "$host" "$port"; do
        if [ "$waited" -ge "$seconds" ]; then
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}
