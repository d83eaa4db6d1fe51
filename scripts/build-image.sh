#!/usr/bin/env bash
# make image: the Dockerfile built with podman from what is on this machine, with no network inside
# the build. The dependency wheels are built on the host from pyproject.toml's pins (wheelhouse/,
# the Dockerfile's WHEELS=wheelhouse); the base is the Dockerfile's default python image when it
# can be pulled, else one made from Debian packages (scripts/make-base-image.sh).
#
# The image is named after a hash of what goes into it (Dockerfile, .dockerignore, pyproject.toml,
# README.md, mlplatform/), so an unchanged tree reuses the image already built. Prints its name.
# Environment: PYTHON (a Python 3.11 with pip, default .venv/bin/python), IMAGE_REPOSITORY.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
repository=${IMAGE_REPOSITORY:-localhost/mlplatform}
official_base=docker.io/library/python:3.11-slim-bookworm
local_base=localhost/mlplatform-python:3.11-bookworm
log() { echo "build-image: $(date -u +%T) $*" >&2; }

key=$(find Dockerfile .dockerignore pyproject.toml README.md mlplatform -type f \
        ! -path '*/__pycache__/*' ! -name '*.pyc' -print | LC_ALL=C sort | xargs sha256sum \
    | sha256sum | cut -c1-16)
name="$repository:src-$key"
if podman image exists "$name"; then
    log "$name exists (same Dockerfile, pyproject.toml and mlplatform/)"
    echo "$name"
    exit 0
fi

# The base and the wheels come from different servers (Debian's mirror, PyPI) and mostly wait on
# them: the base is made in the background while the wheels are built (3 min 20 s and 2 min apart).
base_pid=
if podman image exists "$official_base" || podman pull --quiet "$official_base" >/dev/null 2>&1; then
    base=$official_base
else
    log "$official_base cannot be pulled: making $local_base from Debian packages"
    sh scripts/make-base-image.sh "$local_base" >&2 &
    base_pid=$!
    # Never left running behind this script (a failed wheel build waits for it to end).
    trap 'wait "$base_pid" 2>/dev/null || true' EXIT
    base=$local_base
fi

# The wheels, rebuilt from scratch (no stale wheel is left behind) whenever the pins change:
# [project].dependencies or [build-system].requires, not other edits of pyproject.toml.
pins=$("$python" -c "import hashlib, json, tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print(hashlib.sha256(json.dumps([p['project']['dependencies'], p['build-system']['requires']]).encode()).hexdigest())")
if [ "$(cat wheelhouse/.pins.sha256 2>/dev/null)" != "$pins" ]; then
    log "building the dependency wheels on the host into wheelhouse/"
    rm -rf wheelhouse
    mkdir wheelhouse
    "$python" -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies']))" \
        >wheelhouse/requirements.txt
    "$python" -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['build-system']['requires']))" \
        >wheelhouse/build-requirements.txt
    "$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir wheelhouse \
        --requirement wheelhouse/requirements.txt --requirement wheelhouse/build-requirements.txt >&2
    echo "$pins" >wheelhouse/.pins.sha256
    log "built the wheels"
fi

if [ -n "$base_pid" ] && ! wait "$base_pid"; then
    log "making the base image $local_base failed"
    exit 1
fi
[ -z "$base_pid" ] || log "made the base image $local_base"

# runc: crun refuses hosts with hybrid cgroups. Containers cannot raise RLIMIT_NOFILE/NPROC above
# the caller's, and podman's defaults are higher on many machines: ask for what this shell has.
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
log "building $name from $base"
start=$(date +%s)
# --format docker: the OCI format has no HEALTHCHECK, and the image's health check is part of it.
# --jobs 2: the runtime stage's apt-get runs while the install stage installs the wheels.
podman build --format docker --jobs 2 --runtime runc --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
    --build-arg "PYTHON_IMAGE=$base" --build-arg WHEELS=wheelhouse \
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    --tag "$name" --tag "$repository:latest" . >&2
log "built $name in $(($(date +%s) - start)) s, $(podman image inspect --format '{{.Size}}' "$name") bytes"
echo "$name"
