"""Scoring a micro-batch of validated predict requests: one feature computation, one predict per variant.

Every request of the batch is scored against the same registry snapshot. Each record is routed on
its own request id (``<id>:<n>`` inside a batch request), so a caller's variant does not depend on
which requests happened to share its batch. The answers are ready-made JSON per request, keyed by
the pipeline's label (``answers.py``); the log keeps one number per answer (``Task.logged``). The
follow-up, which runs after the answers are released, writes the prediction log rows (each
record's inputs encoded as JSON), records the distribution of predictions
and scores the shadow.

A challenger that fails (raises, or returns a non-finite score) never fails a request: the
champion answers for it, and the log keeps a row with status "error" for the challenger, which is
the error rate the rollout controller judges. A failing shadow is logged the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
from pydantic_core import to_json

from mlplatform.serving.answers import Answers
from mlplatform.serving.metrics import Metrics
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.prediction_log import PredictionLog, log_frame
from mlplatform.serving.registry_models import RegistryModels, Served
from mlplatform.serving.routing import CHALLENGER, CHAMPION, route

logger = logging.getLogger(__name__)
POLARS_ENCODE_ROWS = 64  # above this many rows one polars query encodes the log's inputs faster
POLARS_ANSWER_ROWS = 64  # above this many records polars writes a batch's answers faster


@dataclass(frozen=True)
class Job:
    """One validated predict request: its columns (lists from JSON, or the typed frame an Arrow batch
    arrives as), and how its records are named and routed."""

    columns: dict[str, list] | pl.DataFrame
    size: int
    request_id: str
    batch: bool  # a batch request: record n is "<request_id>:<n>" and the answer is a list
    target: str | None  # the X-Target-Variant header
    started: float  # time.perf_counter() when the request arrived
    days: list[str | None] | None = None  # each record's event day, when the contract's check computed it

    @property
    def ids(self) -> list[str]:
        return [f"{self.request_id}:{n}" for n in range(self.size)] if self.batch else [self.request_id]


@dataclass(frozen=True)
class _Scored:
    """What the follow-up needs of a scored batch."""

    raw: pl.DataFrame
    features: pl.DataFrame
    ids: list[str]
    days: list[str | None]
    variants: list[str]
    logged: np.ndarray  # one number per row: probability, class index or value
    latencies_ms: list[float]
    probabilities: list[list[float]] | None  # per row, a multiclass answer's (``Task.class_probabilities``)


class Scorer:
    def __init__(
        self, name: str, online: OnlineFeatures, models: RegistryModels, log: PredictionLog, metrics: Metrics
    ) -> None:
        self.name, self.online, self.models, self.log, self.metrics = name, online, models, log, metrics
        self.answers = Answers(online.spec)
        self.task = online.spec.task_def
        self._width = (len(self.task.classes),) if self.task.kind == "multiclass" else ()

    def __call__(self, jobs: Sequence[Job]) -> tuple[list[bytes], Callable[[], None]]:
        """Each job's JSON answer, and the follow-up work."""
        snapshot = self.models.snapshot
        raw = self._raw(jobs)
        known = [job.days for job in jobs]
        carried = None if None in known else [day for days in known if days is not None for day in days]
        features, days = self.online.features(raw, carried)
        ids_per_job = [job.ids for job in jobs]
        ids = [i for job_ids in ids_per_job for i in job_ids]
        has_challenger = CHALLENGER in snapshot.models
        variants = route(ids_per_job, [job.target for job in jobs], snapshot.state, has_challenger)
        scores = np.empty((len(ids), *self._width))
        failures: list[tuple[int, str]] = []  # (row, variant) the champion answered for instead
        for variant in sorted(set(variants), key=lambda v: v == CHAMPION):
            rows = [n for n, v in enumerate(variants) if v == variant]
            try:
                scores[rows] = _predict(snapshot.models[variant], features, rows, len(ids))
            except Exception as exc:
                if variant == CHAMPION:
                    raise
                logger.warning(
                    f"{self.name}: the {variant} failed ({type(exc).__name__}: {exc}"[:300]
                    + "); the champion answers instead"
                )
                failures += [(n, variant) for n in rows]
        if failures:
            rows = [n for n, _ in failures]
            scores[rows] = _predict(snapshot.models[CHAMPION], features, rows, len(ids))
            for n in rows:
                variants[n] = CHAMPION
        finished = time.perf_counter()
        bodies = self._bodies(jobs, ids, scores, [snapshot.models[v] for v in variants], variants)
        latencies = [(finished - job.started) * 1000 for job in jobs for _ in range(job.size)]
        for variant, count in Counter(variants).items():
            self.metrics.requests.labels(self.name, variant, "200").inc(count)
        for variant, count in Counter(v for _, v in failures).items():
            self.metrics.requests.labels(self.name, variant, "failed_over").inc(count)
        shadow = snapshot.models.get(CHALLENGER) if snapshot.state.shadows else None
        probabilities = self.task.class_probabilities(scores)
        scored = _Scored(
            raw, features, ids, days, variants, self.task.logged(scores), latencies, probabilities
        )
        failed = {n: snapshot.models[v] for n, v in failures}
        return bodies, partial(
            self._follow_up, scored, {v: snapshot.models[v] for v in set(variants)}, shadow, failed
        )

    def _bodies(
        self,
        jobs: Sequence[Job],
        ids: list[str],
        scores: np.ndarray,
        served: list[Served],
        variants: list[str],
    ) -> list[bytes]:
        """Each job's JSON answer: a batch of more than ``POLARS_ANSWER_ROWS`` records written from
        columns, other jobs from one dict per record (polars' fixed cost is more than a few dicts)."""
        bodies, start = [], 0
        for job in jobs:
            end = start + job.size
            part_served = served[start:end]
            thresholds = [model.threshold for model in part_served]
            if job.batch and job.size > POLARS_ANSWER_ROWS:
                versions = [model.version for model in part_served]
                bodies.append(
                    self.answers.batch_body(
                        ids[start:end], scores[start:end], thresholds, versions, variants[start:end]
                    )
                )
            else:
                values = self.answers.values(scores[start:end], thresholds)
                answers = [
                    {"request_id": request_id, **value, "model_version": model.version, "variant": variant}
                    for request_id, variant, model, value in zip(
                        ids[start:end], variants[start:end], part_served, values, strict=True
                    )
                ]
                bodies.append(to_json({"predictions": answers} if job.batch else answers[0]))
            start = end
        return bodies

    def _raw(self, jobs: Sequence[Job]) -> pl.DataFrame:
        """The jobs' records as one frame typed by the raw schema: single JSON records (the usual
        micro-batch) joined as lists into one frame, an Arrow batch's frame as it is."""
        if len(jobs) == 1:
            only = jobs[0].columns
            return only if isinstance(only, pl.DataFrame) else self.online.frame(only)
        lists = [job.columns for job in jobs if not isinstance(job.columns, pl.DataFrame)]
        if len(lists) == len(jobs):
            return self.online.frame(
                {c: [v for job in lists for v in job[c]] for c in self.online.raw_schema}
            )
        return pl.concat(
            [
                job.columns if isinstance(job.columns, pl.DataFrame) else self.online.frame(job.columns)
                for job in jobs
            ]
        )

    def _follow_up(
        self, scored: _Scored, served: dict[str, Served], shadow: Served | None, failed: dict[int, Served]
    ) -> None:
        """Log every answer (and every challenger failure the champion answered for), record the
        predictions' distribution, and score the shadow. The log's rows are built as columns, one
        frame per batch."""
        inputs = encoded_inputs(scored.raw)
        now = dt.datetime.now(dt.UTC)
        self.log.append_frame(
            self._logged(
                scored.ids,
                now,
                scored.days,
                next(iter(served.values())).version
                if len(served) == 1
                else [served[v].version for v in scored.variants],
                scored.variants,
                inputs,
                scored.logged,
                scored.latencies_ms,
                scored.probabilities,
            )
        )
        if failed:
            rows = list(failed)
            self.log.append_frame(
                self._logged(
                    [scored.ids[n] for n in rows],
                    now,
                    [scored.days[n] for n in rows],
                    [model.version for model in failed.values()],
                    CHALLENGER,
                    inputs.gather(rows),
                    np.full(len(rows), math.nan),
                    [scored.latencies_ms[n] for n in rows],
                    status="error",
                )
            )
        variants = np.asarray(scored.variants)
        if self.task.kind == "binary":  # the distribution of probabilities; other tasks have no such scale
            for variant in served:
                self.metrics.predictions.observe(self.name, variant, scored.logged[variants == variant])
        if shadow is not None:
            started = time.perf_counter()
            status = "ok"
            try:
                predicted = _predict(shadow, scored.features, list(range(len(scored.ids))), len(scored.ids))
                shadow_scores, shadow_classes = (
                    self.task.logged(predicted),
                    self.task.class_probabilities(predicted),
                )
            except Exception as exc:
                logger.warning(
                    f"{self.name}: the shadow v{shadow.version} failed ({type(exc).__name__}: {exc}"[:300]
                    + ")"
                )
                shadow_scores, shadow_classes, status = np.full(len(scored.ids), math.nan), None, "error"
            latency = (time.perf_counter() - started) * 1000
            self.log.append_frame(
                self._logged(
                    scored.ids,
                    dt.datetime.now(dt.UTC),
                    scored.days,
                    shadow.version,
                    "shadow",
                    inputs,
                    shadow_scores,
                    [latency] * len(scored.ids),
                    shadow_classes,
                    status,
                )
            )

    def _logged(
        self,
        ids: list[str],
        now: dt.datetime,
        days: list[str | None],
        versions: list[str] | str,
        variants: list[str] | str,
        inputs: pl.Series,
        scores: np.ndarray,
        latencies_ms: list[float],
        probabilities: list[list[float]] | None = None,
        status: str = "ok",
    ) -> pl.DataFrame:
        """Log rows, one per id; a str for the versions or variants is every row's, and no
        probabilities (a task without them) is null in every row."""
        return log_frame(
            len(ids),
            {
                "request_id": ids,
                "time": now,
                "event_day": days,
                "pipeline": self.name,
                "model_version": versions,
                "variant": variants,
                "inputs": inputs,
                "prediction": scores,
                "probabilities": probabilities,
                "latency_ms": latencies_ms,
                "status": status,
            },
        )


def encoded_inputs(raw: pl.DataFrame) -> pl.Series:
    """Each request row as a JSON object, datetimes in ISO 8601 with their offset either way.

    A polars query costs about 0.45 ms whatever the rows and runs on the thread pool the next
    batch's feature query needs; Python costs about 6 us a row. So Python encodes a micro-batch of
    single-record requests, polars a large batch."""
    if raw.height > POLARS_ENCODE_ROWS:
        return raw.select(pl.struct(pl.all()).struct.json_encode().alias("inputs")).to_series()
    names = raw.columns
    columns = [
        [None if v is None else v.isoformat() for v in column.to_list()]
        if column.dtype == pl.Datetime
        else column.to_list()
        for column in raw.get_columns()
    ]
    return pl.Series(
        "inputs",
        [to_json(dict(zip(names, row, strict=True))).decode() for row in zip(*columns, strict=True)],
        pl.String,
    )


def _predict(served: Served, features: pl.DataFrame, rows: list[int], total: int) -> np.ndarray:
    """The variant's scores for ``rows``; a model that returns a non-finite score has failed."""
    scores = served.model.predict(features if len(rows) == total else features[rows])
    if not np.isfinite(scores).all():
        raise ValueError(
            f"v{served.version} returned {int((~np.isfinite(scores)).sum())} non-finite score(s)"
        )
    return scores
