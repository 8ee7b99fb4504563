#!/usr/bin/env bash
# One entry point for a fresh machine: installs what ariabot needs, then runs it.
#   ./setup.sh run [ariabot run options]   install, then start `ariabot run`
#   ./setup.sh test [pytest options]       install with test extras, then run the test suite
#   ./setup.sh bench [--smoke]             install with test extras, then run the benchmarks
#   ./setup.sh soak [minutes] [options]    install with test extras, then hunt for broken
#                                          promises with random sequences (tests/soak.py)
# System packages (aria2, python3-venv; rclone, transmission-cli, ffmpeg, chromium, curl and
# nginx for tests and benchmarks, rclone for `run` when ARIABOT_RCLONE_REMOTE is set) come
# from apt when missing; everything Python goes into ./.venv so the system Python is never
# touched.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${ARIABOT_VENV:-.venv}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

ensure_system_packages() {
    command -v aria2c >/dev/null 2>&1 || apt_install aria2
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        echo "ariabot needs Python 3.11 or newer; found $(python3 --version)" >&2
        exit 2
    }
    python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
}

# rclone mirrors finished downloads to a cloud: needed when a destination is configured,
# and always by the tests (they upload to a real `rclone serve webdav`).
ensure_rclone() {
    command -v "${ARIABOT_RCLONE:-rclone}" >/dev/null 2>&1 || apt_install rclone
}

# What the tests and benchmarks need besides: rclone, transmission-cli as a second
# BitTorrent seeder (issue 16); for the download links (issue 14) ffmpeg (makes a short
# MP4), chromium (a real browser plays it), curl (Range, resume, refusals) and nginx (the
# HTTP benchmark's yardstick, run as the user on a loopback port, never as a service);
# PostgreSQL's server binaries for the store's tests on PostgreSQL (tests/pgserver.py
# starts a throwaway cluster on a loopback port, never the packaged service).
ensure_test_packages() {
    ensure_rclone
    local missing=()
    command -v transmission-cli >/dev/null 2>&1 || missing+=(transmission-cli)
    command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_venv() {
    local extras=$1
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".${extras}"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        ensure_system_packages
        if [ -n "${ARIABOT_RCLONE_REMOTE:-}" ]; then ensure_rclone; fi
        ensure_venv ""
        exec "$VENV/bin/ariabot" run "$@"
        ;;
    test)
        ensure_system_packages
        ensure_test_packages
        ensure_venv "[test]"
        "$VENV/bin/ruff" check .
        # Two workers: most tests wait on aria2c, a swarm or a fake server, so two run side by
        # side on a 2-core machine in about half the time (TEST_WORKERS=0: one process).
        # The 30 slowest tests are listed at the end: where the run's time goes.
        exec "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist worksteal \
            --durations=30 "$@"
        ;;
    bench)
        ensure_system_packages
        ensure_test_packages
        ensure_venv "[test]"
        exec "$VENV/bin/python" -m tests.bench "$@"
        ;;
    soak)
        ensure_system_packages
        ensure_test_packages
        ensure_venv "[test]"
        exec "$VENV/bin/python" -m tests.soak "$@"
        ;;
    *)
        echo "usage: ./setup.sh run|test|bench|soak [options]" >&2
        exit 2
        ;;
esac
