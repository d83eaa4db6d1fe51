"""The prediction service: FastAPI app over every declared pipeline's registered models.

``POST /v1/pipelines/{pipeline}/predict`` takes one record or ``{"records": [...]}`` and answers
each with the prediction, the model version and the variant. Bad input is a 4xx whose JSON body
names the field or the problem, never a 500. Health, readiness and Prometheus metrics stay open;
predict and model endpoints need ``Authorization: Bearer $MLPLATFORM_API_TOKEN`` when it is set.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import TypeAdapter, ValidationError

from mlplatform.lib.spec import PipelineSpec
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.registry_models import RegistryModels, Served
from mlplatform.serving.routing import CHALLENGER, CHAMPION, choose
from mlplatform.serving.schema import record_model


@dataclass
class Pipeline:
    spec: PipelineSpec
    records: TypeAdapter
    online: OnlineFeatures
    models: RegistryModels


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlplatform_requests",
            "Prediction requests",
            ["pipeline", "variant", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlplatform_request_latency_seconds",
            "Predict latency",
            ["pipeline"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.predictions = Histogram(
            "mlplatform_prediction",
            "Predicted probability",
            ["pipeline", "variant"],
            registry=self.registry,
            buckets=tuple(i / 10 for i in range(1, 11)),
        )
        self.staleness = Gauge(
            "mlplatform_registry_staleness_seconds",
            "Seconds since the registry was read",
            ["pipeline"],
            registry=self.registry,
        )


def _problem(status: int, problem: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": problem, **details}, status_code=status)


def _field_errors(error: ValidationError) -> list[dict]:
    return [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in error.errors()]


def create_app(
    pipelines: dict[str, Pipeline], log: PredictionLog, api_token: str | None = None, max_batch: int = 1000
) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.start()
        for pipeline in pipelines.values():
            pipeline.models.start()
        yield
        for pipeline in pipelines.values():
            pipeline.models.stop()
        log.close()

    app = FastAPI(title="mlplatform prediction service", lifespan=lifespan)

    def authorized(request: Request) -> bool:
        if not api_token:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {api_token}".encode())

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        details = {}
        for name, pipeline in pipelines.items():
            snapshot = pipeline.models.snapshot
            details[name] = {
                "champion": snapshot.models[CHAMPION].version if CHAMPION in snapshot.models else None,
                "staleness_seconds": pipeline.models.staleness_seconds,
                "registry_error": pipeline.models.last_error,
            }
        ok = all(d["champion"] is not None for d in details.values())
        return JSONResponse({"ready": ok, "pipelines": details}, status_code=200 if ok else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        for name, pipeline in pipelines.items():
            metrics.staleness.labels(name).set(pipeline.models.staleness_seconds or math.inf)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/pipelines/{name}/model")
    def model(name: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return _problem(401, "missing or wrong bearer token")
        if name not in pipelines:
            return _problem(404, f"unknown pipeline {name!r}", pipelines=sorted(pipelines))
        snapshot = pipelines[name].models.snapshot
        state = snapshot.state
        return JSONResponse(
            {
                "pipeline": name,
                "aliases": {alias: served.version for alias, served in snapshot.models.items()},
                "rollout": {
                    "strategy": state.strategy,
                    "stage": state.stage,
                    "challenger_traffic": state.traffic,
                },
                "refreshed_at": dt.datetime.fromtimestamp(snapshot.refreshed_at, dt.UTC).isoformat()
                if snapshot.refreshed_at
                else None,
            }
        )

    @app.post("/v1/pipelines/{name}/predict")
    async def predict(name: str, request: Request, background: BackgroundTasks) -> JSONResponse:
        started = time.perf_counter()

        def reject(status: int, problem: str, **details: Any) -> JSONResponse:
            metrics.requests.labels(name, "none", str(status)).inc()
            return _problem(status, problem, **details)

        if not authorized(request):
            return reject(401, "missing or wrong bearer token")
        if name not in pipelines:
            return reject(404, f"unknown pipeline {name!r}", pipelines=sorted(pipelines))
        pipeline = pipelines[name]
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return reject(400, f"malformed JSON: {exc}")
        batch = isinstance(body, dict) and "records" in body
        raw = body["records"] if batch else [body]
        if not isinstance(raw, list):
            return reject(422, "records must be a list of objects", field="records")
        if not raw:
            return reject(422, "records is empty: send at least one record", field="records")
        if len(raw) > max_batch:
            return reject(413, f"{len(raw)} records exceed the maximum batch of {max_batch}", field="records")
        try:
            records = [r.model_dump() for r in pipeline.records.validate_python(raw)]
        except ValidationError as exc:
            errors = _field_errors(exc)
            if not batch:
                errors = [{**e, "field": e["field"].split(".", 1)[-1]} for e in errors]
            return reject(422, "invalid record(s)", fields=errors)
        snapshot = pipeline.models.snapshot
        if CHAMPION not in snapshot.models:
            return reject(503, f"pipeline {name!r} has no champion model loaded yet")
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        target = request.headers.get("x-target-variant")
        if target is not None and target not in (CHAMPION, CHALLENGER):
            return reject(400, f"X-Target-Variant must be {CHAMPION!r} or {CHALLENGER!r}, not {target!r}")
        features, days = pipeline.online.features(records)
        ids = [request_id] if not batch else [f"{request_id}:{i}" for i in range(len(records))]
        variants = [choose(i, snapshot.state, CHALLENGER in snapshot.models, target) for i in ids]
        scores = [0.0] * len(records)
        for variant in set(variants):
            rows = [i for i, v in enumerate(variants) if v == variant]
            served = snapshot.models[variant]
            predicted = (
                served.model.predict(features[rows])
                if len(rows) > 1
                else [served.model.predict_record(features.row(rows[0], named=True))]
            )
            for row, value in zip(rows, predicted, strict=True):
                scores[row] = float(value)
        latency_ms = (time.perf_counter() - started) * 1000
        now = dt.datetime.now(dt.UTC)
        inputs = [json.dumps(record, default=str) for record in records]
        observed = {v: metrics.predictions.labels(name, v) for v in set(variants)}
        answers, logged = [], []
        for i, (rid, variant, score) in enumerate(zip(ids, variants, scores, strict=True)):
            served = snapshot.models[variant]
            answers.append(
                {
                    "request_id": rid,
                    "prediction": score,
                    "delayed": score >= served.threshold,
                    "model_version": served.version,
                    "variant": variant,
                }
            )
            logged.append(
                {
                    "request_id": rid,
                    "time": now,
                    "event_day": days[i],
                    "pipeline": name,
                    "model_version": served.version,
                    "variant": variant,
                    "inputs": inputs[i],
                    "prediction": score,
                    "latency_ms": latency_ms,
                }
            )
            observed[variant].observe(score)
        for variant in observed:
            metrics.requests.labels(name, variant, "200").inc(variants.count(variant))
        log.append(logged)
        if snapshot.state.shadows and CHALLENGER in snapshot.models:
            background.add_task(_shadow, snapshot.models[CHALLENGER], features, ids, inputs, days, name, log)
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        return JSONResponse({"predictions": answers} if batch else answers[0])

    return app


def _shadow(
    served: Served,
    features: Any,
    ids: list[str],
    inputs: list[str],
    days: list,
    name: str,
    log: PredictionLog,
) -> None:
    """Score the challenger after the response is sent; logged as variant 'shadow', never returned."""
    started = time.perf_counter()
    scores = served.model.predict(features)
    latency_ms = (time.perf_counter() - started) * 1000
    now = dt.datetime.now(dt.UTC)
    log.append(
        [
            {
                "request_id": rid,
                "time": now,
                "event_day": day,
                "pipeline": name,
                "model_version": served.version,
                "variant": "shadow",
                "inputs": record_inputs,
                "prediction": float(score),
                "latency_ms": latency_ms,
            }
            for rid, record_inputs, day, score in zip(ids, inputs, days, scores, strict=True)
        ]
    )


def build_pipeline(
    spec: PipelineSpec,
    warehouse_root: Path,
    client: Any,
    poll_seconds: float,
    models: RegistryModels | None = None,
) -> Pipeline:
    from mlplatform.lib.warehouse import ParquetWarehouse

    records: TypeAdapter = TypeAdapter(list[record_model(spec)])  # type: ignore[misc, arg-type]
    online = OnlineFeatures(spec, ParquetWarehouse(warehouse_root))
    return Pipeline(spec, records, online, models or RegistryModels(spec.name, client, poll_seconds))
