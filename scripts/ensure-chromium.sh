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

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    as_root="none"
fi

if [ "$as_root" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing the Debian packages chromium and chromium-driver (browser test)"
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
    found && exit 0
    echo "ensure-chromium: apt-get installed chromium but chromium/chromedriver are still not found" >&2
    exit 1
fi

echo "ensure-chromium: no chromium and chromedriver found and cannot install them here." >&2
echo "  Debian/Ubuntu: sudo apt-get install chromium chromium-driver" >&2
echo "  Without them the browser test is skipped." >&2
