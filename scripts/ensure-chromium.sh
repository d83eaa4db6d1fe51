#!/bin/sh
# Chromium and its WebDriver (chromedriver), which the browser test (mlplatform_tests/browser)
# drives headless against a real Dagster UI and prediction service on 127.0.0.1: install Debian's
# chromium and chromium-driver when they are missing, as root or through password-less sudo (CI
# runners). Anywhere else, say what to install; the browser test then skips (and fails under
# CI=true, so CI never passes without it).
set -eu

found() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

found && exit 0

status=0
sh "$(dirname "$0")/apt-install.sh" "ensure-chromium: installing the Debian packages chromium and chromium-driver (browser test)" \
    chromium chromium-driver || status=$?
if [ "$status" -eq 0 ]; then
    found && exit 0
    echo "ensure-chromium: apt-get installed chromium but chromium/chromedriver are still not found" >&2
    exit 1
fi
[ "$status" -eq 3 ] || exit "$status"

echo "ensure-chromium: no chromium and chromedriver found and cannot install them here." >&2
echo "  Debian/Ubuntu: sudo apt-get install chromium chromium-driver" >&2
echo "  Without them the browser test is skipped." >&2
