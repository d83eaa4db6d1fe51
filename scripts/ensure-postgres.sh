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

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    as_root="none"
fi

if [ "$as_root" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-postgres: installing the Debian package postgresql (server binaries for the storage tests)"
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    found && exit 0
    echo "ensure-postgres: apt-get installed postgresql but initdb/postgres are still not found" >&2
    exit 1
fi

echo "ensure-postgres: no PostgreSQL server binaries (initdb, postgres) found and cannot install them here." >&2
echo "  Debian/Ubuntu: sudo apt-get install postgresql    macOS: brew install postgresql" >&2
echo "  Without them the PostgreSQL storage test is skipped." >&2
