#!/bin/sh
# The container tools that `make image` and the production-shaped test (mlplatform_tests/production)
# use: podman with buildah's build engine, runc (crun refuses hosts with hybrid cgroups), debootstrap
# (the base image where no registry is reachable), uidmap and slirp4netns (rootless podman), binutils.
# Installed when missing, as root or through password-less sudo (CI runners), with Debian/Ubuntu's
# apt, as scripts/ensure-postgres.sh does for PostgreSQL. Anywhere else it says what to install; the
# production test then skips with that reason (and fails under CI=true).
set -eu

packages="podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs"

found() {
    for tool in podman buildah runc debootstrap newuidmap; do
        command -v "$tool" >/dev/null 2>&1 || return 1
    done
}

found && exit 0

status=0
# shellcheck disable=SC2086
sh "$(dirname "$0")/apt-install.sh" "ensure-containers: installing the Debian packages $packages" $packages || status=$?
if [ "$status" -eq 0 ]; then
    found && exit 0
    echo "ensure-containers: apt-get installed $packages but a tool is still not found" >&2
    exit 1
fi
[ "$status" -eq 3 ] || exit "$status"

echo "ensure-containers: podman, buildah, runc, debootstrap or newuidmap is missing and cannot be installed here." >&2
echo "  Debian/Ubuntu: sudo apt-get install $packages" >&2
echo "  Without them the production-shaped test is skipped." >&2
