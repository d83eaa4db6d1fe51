# syntax=docker/dockerfile:1.7
# The mlplatform image: one image, two entry points.
#   default:            the Dagster code location over gRPC (what Dagster's chart runs, helm/dagster-values.yaml)
#   prediction service: mlplatform serve --host 0.0.0.0 (what helm/mlplatform runs)
#   MLflow server:      mlflow server ... (helm/mlplatform, so server and clients share one MLflow version)
# Build: docker build -t mlplatform:$(git rev-parse --short HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: every dependency as a wheel, from pyproject.toml's pinned dependencies ------------
FROM ${PYTHON_IMAGE} AS builder
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

# Installed only from the builder's wheels: no index, so nothing unpinned slips in at this stage.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --disable-pip-version-check --no-index --find-links=/wheels \
        --requirement /wheels/requirements.txt

# The project itself keeps its source layout, installed in place as in development: Dagster finds the
# code location's project root (pyproject.toml, [tool.dg]) from the package's path, which a wheel in
# site-packages would not have. The source stays root-owned, read-only to the runtime user.
WORKDIR /opt/mlplatform
COPY pyproject.toml README.md ./
COPY mlplatform ./mlplatform
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --disable-pip-version-check --no-index --find-links=/wheels \
        --no-deps --editable . \
    && python -m compileall -q mlplatform

# A fixed non-root user (the Helm charts' securityContext runs as 10001 too).
RUN groupadd --gid 10001 mlplatform \
    && useradd --uid 10001 --gid 10001 --home-dir /home/mlplatform --create-home --shell /usr/sbin/nologin mlplatform \
    && mkdir -p /var/lib/mlplatform /opt/dagster/dagster_home \
    && chown 10001:10001 /var/lib/mlplatform /opt/dagster/dagster_home

# Configuration comes from the environment at run time (README, Configuration); nothing secret here.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLPLATFORM_HOME=/var/lib/mlplatform \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MPLCONFIGDIR=/tmp/matplotlib

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
