#!/bin/sh
# The PostgreSQL server binaries (initdb, postgres) that mlplatform_tests/storage starts on
# 127.0.0.1: install them when they are missing, as root or through password-less sudo (CI runners),
# with Debian/Ubuntu's apt. Anywhere else, say what to install; the PostgreSQL test then skips
# (and fails under CI=true, so CI never passes without it).
set -eu

found() {
    command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
    for bin in /usr/lib/postgresql/*/bin; do
        [ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] && return 0
    done
    return 1
}

found && exit 0

status=0
sh "$(dirname "$0")/apt-install.sh" "ensure-postgres: installing the Debian package postgresql (server binaries for the storage tests)" postgresql || status=$?
if [ "$status" -eq 0 ]; then
    found && exit 0
    echo "ensure-postgres: apt-get installed postgresql but initdb/postgres are still not found" >&2
    exit 1
fi
[ "$status" -eq 3 ] || exit "$status"

echo "ensure-postgres: no PostgreSQL server binaries (initdb, postgres) found and cannot install them here." >&2
echo "  Debian/Ubuntu: sudo apt-get install postgresql    macOS: brew install postgresql" >&2
echo "  Without them the PostgreSQL storage test is skipped." >&2
