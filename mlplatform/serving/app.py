"""The prediction service: FastAPI app over every declared pipeline's registered models.

``POST /v1/pipelines/{pipeline}/predict`` takes one record or ``{"records": [...]}`` as JSON, or a
batch as an Arrow IPC stream (``arrow_batch``), and answers each record with the prediction, the
model version and the variant. Bad input is a 4xx whose JSON body names the field or the problem,
never a 500. Health, readiness and Prometheus metrics stay open; predict and model endpoints need
``Authorization: Bearer $MLPLATFORM_API_TOKEN`` when it is set.
"""

from __future__ import annotations

import datetime as dt
import gc
import hmac
import itertools
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic_core import to_json
from starlette.types import Receive, Scope, Send

from mlplatform.core.data.days import describe_rule
from mlplatform.core.spec import PipelineSpec
from mlplatform.serving.answers import Answers
from mlplatform.serving.api_docs import serve_api_docs
from mlplatform.serving.arrow_batch import ARROW_STREAM, ROWS_NAMED, ArrowRecords
from mlplatform.serving.batching import MicroBatcher
from mlplatform.serving.metrics import Metrics
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.registry_models import RegistryModels
from mlplatform.serving.routing import CHALLENGER, CHAMPION
from mlplatform.serving.schema import RecordValidator, Rejected
from mlplatform.serving.scoring import Job, Scorer

logger = logging.getLogger(__name__)
_PREDICT_PATH = re.compile(r"/v1/pipelines/([^/]+)/predict")
_JSON_HEADER = (b"content-type", b"application/json")
Headers = list[tuple[bytes, bytes]]  # an ASGI scope's: lower-case names
Answer = tuple[int, bytes]  # status and JSON body
BODY_BYTES_PER_RECORD = 4096  # a flight record is about 250 bytes of JSON: room for far wider ones
Endpoint = Callable[[str, Headers, bytes | None], Awaitable[Answer]]  # no body: it was too large


def _media_type(headers: Headers) -> str:
    return (_header(headers, b"content-type") or "").partition(";")[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class TooLarge(Exception):
    """A request body longer than the service accepts."""


async def _body(headers: Headers, receive: Receive, limit: int) -> bytes:
    """The whole body, refused as soon as it is known to pass ``limit`` bytes: before reading when
    Content-Length says so, or at the chunk that crosses it when the body is streamed. A client
    cannot make the service hold more than ``limit`` bytes of one request in memory."""
    declared = _header(headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class PredictionService(FastAPI):
    """FastAPI with a short way in for predictions: a POST to the predict route goes straight to its
    endpoint as plain ASGI, skipping routing, dependency resolution, the middleware stack and
    Starlette's request and response objects, which together cost more per request than validating
    a record. The route is registered as usual too (the OpenAPI page, and any other way in)."""

    predict_endpoint: Endpoint | None = None
    max_body_bytes: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.predict_endpoint is not None:
            match = _PREDICT_PATH.fullmatch(scope["path"])
            if match is not None:
                content: bytes | None
                try:
                    content = await _body(scope["headers"], receive, self.max_body_bytes)
                except TooLarge:
                    content = None
                status, body = await self.predict_endpoint(match.group(1), scope["headers"], content)
                headers = [_JSON_HEADER, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await super().__call__(scope, receive, send)


class RequestIds:
    """Ids for requests that bring none: 64 random bits per process, then a counter, as 32 hex
    digits (the length of a UUID). A fresh UUID per request reads the kernel's random source,
    which under load cost 20 us of the request's time."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


@dataclass
class Pipeline:
    spec: PipelineSpec
    validator: RecordValidator
    arrow: ArrowRecords
    online: OnlineFeatures
    models: RegistryModels


SERVING, NO_CHAMPION, WAITING, BROKEN, REFUSED = "serving", "no_champion", "waiting", "broken", "refused"


def _iso(timestamp: float | None) -> str | None:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat() if timestamp else None


def pipeline_readiness(models: RegistryModels) -> dict[str, Any]:
    """One pipeline's entry in ``/ready`` (a dict: more keys may be added). ``serving``: its
    champion is loaded; ``no_champion``: the registry was read and names none (a pipeline not
    trained yet); ``refused``: the champion the registry names failed its integrity check and no
    earlier one is loaded; ``waiting``: the registry has not been read successfully yet, so whether
    there is a champion to load is unknown. ``refused`` lists every version not loaded and why;
    ``registry_error`` and ``registry_error_since`` say how polls fail, and since when."""
    snapshot = models.snapshot
    champion = snapshot.models.get(CHAMPION)
    refused = sorted(models.refused.values(), key=lambda r: r.alias)
    if champion:
        state = SERVING
    elif any(r.alias == CHAMPION for r in refused):
        state = REFUSED
    else:
        state = NO_CHAMPION if snapshot.refreshed_at else WAITING
    return {
        "ready": champion is not None,
        "state": state,
        "champion": champion.version if champion else None,
        "staleness_seconds": models.staleness_seconds,
        "registry_error": models.last_error,
        "registry_error_since": _iso(models.error_since),
        "refused": [
            {"version": r.version, "alias": r.alias, "reason": r.reason, "since": _iso(r.since)}
            for r in refused
        ],
        "error": None,
    }


def broken_readiness(error: str) -> dict[str, Any]:
    """A pipeline not served because its spec is broken: its entry says why."""
    return {
        "ready": False,
        "state": BROKEN,
        "champion": None,
        "staleness_seconds": None,
        "registry_error": None,
        "registry_error_since": None,
        "refused": [],
        "error": error,
    }


def service_ready(entries: dict[str, dict[str, Any]]) -> bool:
    """The replica takes traffic (Kubernetes' readiness) when it serves at least one pipeline and
    holds every champion the registry names: no pipeline is ``waiting``. A pipeline without a
    champion, or with a broken spec, does not hold it back: every replica is in the same state
    for those, so taking replicas out of rotation would only stop the other pipelines too."""
    states = [entry["state"] for entry in entries.values()]
    return WAITING not in states and any(state != BROKEN for state in states)


def _check_days(
    pipeline: Pipeline, columns: dict[str, list] | pl.DataFrame, batch: bool
) -> list[str | None] | None:
    """Refuse records whose event day cannot be computed from fields that each passed their own
    range (month 2 and day 31 make no date, and the feature function would fail on them), or whose
    fields disagree with the timestamp they are declared consistent with (as ingestion refuses).
    The records' event days, computed on the way, go to the scorer with the request (None: the day
    rule reads no column)."""
    fields, rows, days = pipeline.online.undated(columns)
    if rows:
        source = pipeline.spec.source
        rule = describe_rule(source.partition_expr, source.day)
        problem = (
            f"{', '.join(fields)} do not form a valid date or disagree with each other (the day: {rule})"
        )
        named = {"rows": rows[:ROWS_NAMED], "count": len(rows)} if batch else {}
        raise Rejected(
            422, "invalid record(s)", fields=[{"field": ", ".join(fields), "problem": problem, **named}]
        )
    return days


def _problem(status: int, problem: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": problem, **details}, status_code=status)


def _predict_body(pipelines: dict[str, Pipeline], max_batch: int) -> dict:
    """The predict route's body and answers for the OpenAPI page (the endpoint reads the body
    itself): one record of a pipeline, or ``{"records": [...]}``, or an Arrow IPC stream; answered by
    each pipeline's own answer, keyed by its label (``answers.py``)."""
    record = {"anyOf": [p.validator.model.model_json_schema() for p in pipelines.values()]}
    batch = {
        "type": "object",
        "properties": {"records": {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}},
        "required": ["records"],
        "additionalProperties": False,
    }
    schema = {"anyOf": [record, batch]}
    arrow = {
        "type": "string",
        "format": "binary",
        "description": f"A batch of at most {max_batch} records as an Arrow IPC stream: one column per "
        "field of a record, one row per record.",
    }
    content = {"application/json": {"schema": schema}, ARROW_STREAM: {"schema": arrow}}
    answers = {"anyOf": [Answers(p.spec).schemas() for p in pipelines.values()]}
    return {
        "requestBody": {"required": True, "content": content},
        "responses": {
            "200": {
                "description": "Each record's answer, with keys named from the pipeline's label",
                "content": {"application/json": {"schema": answers}},
            }
        },
    }


def create_app(
    pipelines: dict[str, Pipeline],
    log: PredictionLog,
    api_token: str | None = None,
    max_batch: int = 1000,
    freeze_heap: bool = False,
    max_body_bytes: int | None = None,
    broken: dict[str, str] | None = None,
) -> FastAPI:
    """The service. A predict body longer than ``max_body_bytes`` (by default
    ``BODY_BYTES_PER_RECORD`` for each record of the largest batch) is a 413, refused before it is
    read whole. ``broken``: pipelines not served, with why (``/ready`` lists them).
    ``freeze_heap`` (for a process that only serves): once the models are loaded, move every
    object alive into the garbage collector's permanent generation. The imported libraries and
    models are half a million objects; a full collection over them pauses every request for
    hundreds of milliseconds, and they never become garbage."""
    if max_body_bytes is None:
        max_body_bytes = max_batch * BODY_BYTES_PER_RECORD
    metrics = Metrics()
    batchers: dict[str, MicroBatcher[Job, bytes]] = {
        name: MicroBatcher(Scorer(name, p.online, p.models, log, metrics), f"score-{name}")
        for name, p in pipelines.items()
    }

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.start()
        for pipeline in pipelines.values():
            pipeline.models.start()
        if freeze_heap:
            gc.freeze()
        yield
        for pipeline in pipelines.values():
            pipeline.models.stop()
        for batcher in batchers.values():
            await batcher.close()
        log.close()

    app = PredictionService(
        title="mlplatform prediction service", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    serve_api_docs(app)

    def authorized(headers: Headers) -> bool:
        if not api_token:
            return True
        given = _header(headers, b"authorization") or ""
        return hmac.compare_digest(given.encode(), f"Bearer {api_token}".encode())

    @app.get("/health")
    def health() -> dict:
        return {"status": "alive"}

    def readiness() -> dict[str, dict[str, Any]]:
        entries = {name: pipeline_readiness(p.models) for name, p in pipelines.items()}
        entries.update((name, broken_readiness(error)) for name, error in (broken or {}).items())
        return dict(sorted(entries.items()))

    @app.get("/ready")
    def ready() -> JSONResponse:
        """Every pipeline's state; 200 when the replica should take traffic (``service_ready``)."""
        entries = readiness()
        ok = service_ready(entries)
        return JSONResponse({"ready": ok, "pipelines": entries}, status_code=200 if ok else 503)

    @app.get("/ready/{name}")
    def ready_pipeline(name: str) -> JSONResponse:
        """One pipeline's readiness: 200 when its champion is loaded and it answers predictions."""
        entries = readiness()
        if name not in entries:
            return _problem(404, f"unknown pipeline {name!r}", pipelines=sorted(entries))
        entry = entries[name]
        return JSONResponse({"pipeline": name, **entry}, status_code=200 if entry["ready"] else 503)

    @app.get("/metrics")
    def prometheus() -> Response:
        metrics.observe_registries({name: pipeline.models for name, pipeline in pipelines.items()})
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/pipelines/{name}/model")
    def model(name: str, request: Request) -> JSONResponse:
        if not authorized(request.headers.raw):
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
                "refreshed_at": _iso(snapshot.refreshed_at),
            }
        )

    latency = {name: metrics.latency.labels(name) for name in pipelines}
    request_ids = RequestIds()

    def refuse(name: str, status: int, problem: str, **details: Any) -> Answer:
        # A name from the URL becomes a label only if it is a pipeline: any other would grow
        # the metric without bound, one series per name a caller makes up.
        label = name if name in pipelines else "unknown"
        metrics.requests.labels(label, "none", str(status)).inc()
        return status, to_json({"error": problem, **details})

    async def answer(name: str, headers: Headers, content: bytes | None) -> Answer:
        """The answer; an error that escapes is a 500 with a request id, counted and logged once."""
        try:
            return await respond(name, headers, content)
        except Exception:
            request_id = _header(headers, b"x-request-id") or request_ids()
            logger.exception(f"{name}: request {request_id} failed")
            return refuse(name, 500, "internal error", request_id=request_id)

    async def respond(name: str, headers: Headers, content: bytes | None) -> Answer:
        started = time.perf_counter()

        def reject(status: int, problem: str, **details: Any) -> Answer:
            return refuse(name, status, problem, **details)

        if not authorized(headers):
            return reject(401, "missing or wrong bearer token")
        if name not in pipelines:
            return reject(404, f"unknown pipeline {name!r}", pipelines=sorted(pipelines))
        if content is None:
            return reject(413, f"request body exceeds {max_body_bytes} bytes", limit=max_body_bytes)
        pipeline = pipelines[name]
        media_type = _media_type(headers)
        try:
            if media_type == ARROW_STREAM:
                columns: dict[str, list] | pl.DataFrame = pipeline.arrow.frame(content, max_batch)
                size, batch = len(columns), True
            elif _is_json(media_type):
                columns, size, batch = pipeline.validator.request(content, max_batch)
                if batch:  # typed once, here: the check then keys its datetimes through numpy
                    columns = pipeline.online.frame(columns)
            else:
                return reject(
                    415,
                    f"Content-Type {media_type or '(none)'!r} is not supported: send application/json "
                    f"or {ARROW_STREAM}",
                )
            days = _check_days(pipeline, columns, batch)
        except Rejected as rejected:
            return reject(rejected.status, rejected.problem, **rejected.details)
        if CHAMPION not in pipeline.models.snapshot.models:
            return reject(503, f"pipeline {name!r} has no champion model loaded yet")
        request_id = _header(headers, b"x-request-id") or request_ids()
        target = _header(headers, b"x-target-variant")
        if target is not None and target not in (CHAMPION, CHALLENGER):
            return reject(400, f"X-Target-Variant must be {CHAMPION!r} or {CHALLENGER!r}, not {target!r}")
        try:
            answered = await batchers[name].submit(
                Job(columns, size, request_id, batch, target, started, days)
            )
        except Exception:
            # Not the client's error (the contract let the request through): its id, so the one
            # traceback logged here can be found from the client's side.
            logger.exception(f"{name}: request {request_id} failed while scoring")
            return reject(500, "internal error", request_id=request_id)
        latency[name].observe(time.perf_counter() - started)
        return 200, answered

    @app.post("/v1/pipelines/{name}/predict", openapi_extra=_predict_body(pipelines, max_batch))
    async def predict(name: str, request: Request) -> Response:
        status, body = await answer(name, request.headers.raw, await request.body())
        return Response(body, status_code=status, media_type="application/json")

    app.predict_endpoint = answer
    app.max_body_bytes = max_body_bytes
    return app


def build_pipeline(
    spec: PipelineSpec,
    warehouse_root: str | Path,  # a folder or an s3:// URI
    client: Any,
    poll_seconds: float,
    models: RegistryModels | None = None,
) -> Pipeline:
    from mlplatform.core.data.warehouse import ParquetWarehouse

    online = OnlineFeatures(spec, ParquetWarehouse(warehouse_root))
    return Pipeline(
        spec,
        RecordValidator(spec),
        ArrowRecords(spec),
        online,
        models or RegistryModels(spec.name, client, poll_seconds),
    )
