#!/bin/sh
# A local stand-in for the Dockerfile's default base (python:3.11-slim-bookworm) where no container
# registry is reachable: Debian bookworm made from Debian's own packages with debootstrap, with
# Python 3.11 and pip, imported into podman's image store under the name given (default below).
# It follows the official image's conventions the Dockerfile relies on: `python` and `pip` on the
# PATH, pip installing system-wide, `python -m venv` working, apt usable, no package lists or caches left in the image.
#
# Usage: sh scripts/make-base-image.sh [IMAGE_NAME]
# Needs root (debootstrap), podman, debootstrap and Debian's package mirror (DEBIAN_MIRROR).
set -eu

name=${1:-localhost/mlplatform-python:3.11-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
suite=bookworm

if podman image exists "$name"; then
    echo "make-base-image: $name exists"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "make-base-image: debootstrap needs root (run as root or with sudo)" >&2
    exit 1
fi

root=$(mktemp -d "${TMPDIR:-/var/tmp}/mlplatform-base.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM

echo "make-base-image: debootstrap $suite (minbase, python3.11) from $mirror"
# minbase: apt and dpkg only; Recommends are not installed, so no compiler comes with pip.
debootstrap --variant=minbase \
    --include=python3.11,python3.11-venv,python3-pip,python-is-python3,ca-certificates \
    "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    exit 1
}
rm -f "$root.log"

# The Dockerfile's apt-get install gets security fixes too, as in the official image.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF
# As in Debian's official images: apt leaves no package caches behind, in later layers too.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
# Debian marks its Python externally managed (PEP 668); in an image the system Python is the
# application's, as in the official image, so pip installs into /usr/local as there.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/*

tar --numeric-owner -C "$root" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debian $suite minbase + python3.11 (scripts/make-base-image.sh)" \
    - "$name" >/dev/null
echo "make-base-image: $name ($(podman image inspect --format '{{.Size}}' "$name") bytes)"
