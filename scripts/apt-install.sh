#!/bin/sh
# Installs Debian/Ubuntu packages with apt-get, as root or through password-less sudo (CI runners):
# the one install path of scripts/ensure-postgres.sh, ensure-chromium.sh and ensure-containers.sh,
# each of which calls it only when what it needs is missing, then checks again.
# Usage: apt-install.sh "<what the caller says it installs>" <package>...
# Exit status: 0 installed; 3 nothing tried (not root, no password-less sudo, or no apt-get), so the
# caller says what to install by hand; apt-get's own status when it fails.
set -eu

message=$1
shift

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    exit 3
fi
command -v apt-get >/dev/null 2>&1 || exit 3

echo "$message"
$as_root apt-get update -qq
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
