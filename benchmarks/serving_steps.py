"""The predict path's steps in one process, in CPU time: where a request's and a batch's time goes.

Over HTTP the service's figures swing with the host (``benchmarks/serving.py``: the same build
gave 837-1,839 req/s within ten minutes); the CPU time of each step in one process moves far less
and shows which step a change made dearer. Issue 19 found this way that the ``consistent_with``
check, evaluated as a polars query per request, cost 0.54-0.85 ms of CPU per single-record request,
most of the event loop's work, where validation costs 0.01 ms.

``--pipeline NAME`` (default ``flight_delay``) picks any declared pipeline. Setup as
``benchmarks/serving.py`` (untimed): the spec's model window ingested from the source's first day,
version 1 trained as of the day after and made the champion. Measured, each the median of
``ROUNDS`` rounds of CPU time (``time.process_time``, every thread of the process) per call:

1. single records (the last ingested day's, cycled) and a batch of 1,000 records: validating
   the JSON body, the event-day and consistency check (of a batch's typed frame, as the service
   checks a batch), the typed frame, the pipeline's features,
   the model (encoding and predict), the scorer's whole batch (features, predict, answers), its
   follow-up (prediction log rows, metrics) and the prediction log's flush of its rows;
2. the whole path: 8 concurrent callers through the service's predict endpoint (the app's own ASGI
   entry, no sockets) for ``REQUESTS`` requests: CPU per request, and requests per CPU second.
   The log is not flushed meanwhile (its flush is the last step of 1.).

Run from the repository root: ``.venv/bin/python benchmarks/serving_steps.py [--pipeline NAME]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop
from common import add_pipeline_argument, median, report, result_name, temp_home
from serving import BATCH, history, served_records, setup

ROUNDS, CALLS, BATCH_CALLS, REQUESTS, CALLERS = 5, 400, 10, 2000, 8
JSON_HEADERS = [(b"content-type", b"application/json")]


def cpu_us(step: Callable[[int], Any], calls: int) -> float:
    """Median over the rounds of CPU microseconds per call of ``step(n)``, after one untimed call."""
    step(0)
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        for n in range(calls):
            step(n)
        rounds.append((time.process_time() - started) / calls * 1e6)
    return median(rounds)


def steps(pipeline, scorer, bodies: list[bytes], size: int) -> dict[str, float]:
    """CPU microseconds per call of each step for ``bodies`` (cycled), each ``size`` records."""
    from mlplatform.serving.app import _check_days
    from mlplatform.serving.scoring import Job

    calls = CALLS if size == 1 else BATCH_CALLS
    batch = size > 1
    columns = [pipeline.validator.request(body, 1000)[0] for body in bodies]
    frames = [pipeline.online.frame(c) for c in columns]
    features = [pipeline.online.features(f)[0] for f in frames]
    model = pipeline.models.snapshot.models["champion"].model
    jobs = [Job(c, size, "bench", batch, None, 0.0) for c in columns]
    checked = frames if batch else columns  # the service checks a batch as its typed frame
    k = len(bodies)
    return {
        "validation": cpu_us(lambda n: pipeline.validator.request(bodies[n % k], 1000), calls),
        "day and consistency check": cpu_us(lambda n: _check_days(pipeline, checked[n % k], batch), calls),
        "typed frame": cpu_us(lambda n: pipeline.online.frame(columns[n % k]), calls),
        "features": cpu_us(lambda n: pipeline.online.features(frames[n % k]), calls),
        "encode and predict": cpu_us(lambda n: model.predict(features[n % k]), calls),
        "scorer (frame, features, predict, answers)": cpu_us(lambda n: scorer([jobs[n % k]]), calls),
        "follow-up (log rows, metrics)": follow_up_us(scorer, jobs, calls),
        "prediction log flush": flush_us(scorer, jobs, calls),
    }


def follow_up_us(scorer, jobs: list, calls: int) -> float:
    """Median over the rounds of CPU microseconds per follow-up, the batches scored untimed."""
    rounds = []
    for _ in range(ROUNDS):
        pending = [scorer([jobs[n % len(jobs)]])[1] for n in range(calls)]
        started = time.process_time()
        for follow_up in pending:
            follow_up()
        rounds.append((time.process_time() - started) / calls * 1e6)
        scorer.log.flush()
    return median(rounds)


def flush_us(scorer, jobs: list, calls: int) -> float:
    """Median over the rounds of CPU microseconds of the log's flush, per request logged."""
    rounds = []
    for _ in range(ROUNDS):
        for n in range(calls):
            scorer([jobs[n % len(jobs)]])[1]()
        started = time.process_time()
        scorer.log.flush()
        rounds.append((time.process_time() - started) / calls * 1e6)
    return median(rounds)


async def whole_path(app, name: str, bodies: list[bytes]) -> float:
    """CPU microseconds per request of ``CALLERS`` concurrent callers through the predict endpoint."""
    endpoint = app.predict_endpoint

    async def caller(first: int, count: int) -> None:
        for n in range(first, first + count):
            status, answer = await endpoint(name, JSON_HEADERS, bodies[n % len(bodies)])
            assert status == 200, answer

    each = REQUESTS // CALLERS
    await asyncio.gather(*(caller(c * each, 50) for c in range(CALLERS)))  # warm-up
    started = time.process_time()
    await asyncio.gather(*(caller(c * each, each) for c in range(CALLERS)))
    return (time.process_time() - started) / (each * CALLERS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pipeline_argument(parser)
    args = parser.parse_args()
    with temp_home() as home:
        from mlplatform.core.pipelines import load_spec

        spec = load_spec(args.pipeline)
        days, as_of = history(spec)
        print(f"setup: replay and ingest {days[0]}..{days[-1]}, train {spec.name} version 1 as of {as_of}",
              flush=True)  # fmt: skip
        harness = setup(home, spec)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        figures = measure(harness, home, days)
    rows: list[tuple[str, ...]] = [("pipeline, task", f"{spec.name}, {spec.task}")]
    rows += [
        (f"{label}: {step}", f"{value:,.1f} us" if who == "single" else f"{value / 1000:,.2f} ms")
        for who, label in (("single", "single"), ("batch", f"batch {figures['batch_rows']}"))
        for step, value in figures[who].items()
    ]
    rows += [
        (f"whole path, {CALLERS} callers: CPU per request, median of {ROUNDS}", f"{figures['path_us']:,.0f} us"),
        ("whole path: requests per CPU second", f"{1e6 / figures['path_us']:,.0f}"),
    ]  # fmt: skip
    report(result_name("serving_steps", spec.name), rows, {"pipeline": spec.name, **figures})


def measure(harness, home: Path, days: list[str]) -> dict[str, Any]:
    from mlflow import MlflowClient

    from mlplatform.serving.app import build_pipeline, create_app
    from mlplatform.serving.metrics import Metrics
    from mlplatform.serving.prediction_log import PredictionLog
    from mlplatform.serving.scoring import Scorer

    spec, store, uri = harness.spec, harness.store, harness.tracking.uri()
    raw, last_day, _ = served_records(spec, store, days)
    records = json.loads(raw.select(spec.serving_columns).write_json())
    singles = [json.dumps(r).encode() for r in records[:last_day]]
    batch = [json.dumps({"records": records[:BATCH]}).encode()]
    pipeline = build_pipeline(spec, home / "warehouse", lambda: MlflowClient(uri, uri), 5.0)
    log = PredictionLog(home / "bench-predictions", 3600)  # flushed by the steps that measure it
    app = create_app({spec.name: pipeline}, log, None, 1000)

    async def run() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            while "champion" not in pipeline.models.snapshot.models:
                await asyncio.sleep(0.1)
            scorer = Scorer(spec.name, pipeline.online, pipeline.models, log, Metrics())
            figures: dict[str, Any] = {
                "single": steps(pipeline, scorer, singles, 1),
                "batch": steps(pipeline, scorer, batch, len(records[:BATCH])),
            }
            figures["batch_rows"] = len(records[:BATCH])
            figures["path_us"] = median([await whole_path(app, spec.name, singles) for _ in range(ROUNDS)])
            return figures

    return uvloop.run(run())


if __name__ == "__main__":
    main()
