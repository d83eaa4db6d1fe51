"""Building the service from the environment, and running it under uvicorn (``mlplatform serve``)."""

from __future__ import annotations

import logging
import os

import mlflow
from fastapi import FastAPI
from mlflow import MlflowClient

from mlplatform.core import settings
from mlplatform.core.pipelines import declared_pipelines
from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog

logger = logging.getLogger(__name__)


def app_from_environment(
    poll_seconds: float = 5.0, flush_seconds: float = 1.0, freeze_heap: bool = False
) -> FastAPI:
    """Every declared pipeline, the registry at MLFLOW_TRACKING_URI, the warehouse and prediction
    log under MLPLATFORM_HOME, MLPLATFORM_API_TOKEN and MLPLATFORM_MAX_BODY_BYTES if set; read now, at start-up.
    A pipeline whose spec is broken, or that cannot be built, is not served and ``/ready`` lists it
    with its error; the others are served."""
    uri = settings.mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    declared = declared_pipelines()
    broken = {name: str(error) for name, error in declared.errors.items()}
    pipelines = {}
    for name, spec in declared.specs.items():
        try:
            pipelines[name] = build_pipeline(
                spec, settings.warehouse_root(), lambda: MlflowClient(uri, uri), poll_seconds
            )
        except Exception as exc:  # one pipeline that cannot be built must not stop the others
            broken[name] = f"pipeline {name!r} cannot be served: {type(exc).__name__}: {exc}"
    for problem in broken.values():
        logger.error("not served: %s", problem)
    log = PredictionLog(settings.prediction_log_dir(), flush_seconds)
    max_batch = min((p.spec.rollout.max_batch for p in pipelines.values()), default=1000)
    token = os.environ.get("MLPLATFORM_API_TOKEN") or None
    return create_app(pipelines, log, token, max_batch, freeze_heap, settings.max_body_bytes(), broken)


def serve(host: str, port: int, poll_seconds: float) -> None:
    """One uvicorn worker on uvloop and httptools. No access log: a log line per request costs more
    than validating the request, and the prediction log records every answer anyway. Keep-alive
    connections stay open 75 s, so a client reusing a connection does not race the server's close."""
    import uvicorn

    # The poller retries on its own schedule and reports each failure: MLflow's own retries (7, with
    # backoff) and 120 s request timeout would hide a killed server behind minutes of one poll.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    uvicorn.run(
        app_from_environment(poll_seconds, freeze_heap=True),
        host=host,
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=False,
        timeout_keep_alive=75,
    )
