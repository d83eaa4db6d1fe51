"""One request that breaks scoring never fails its neighbours: valid and poison requests sent at
the same time share micro-batches, and only the poison ones fail, each a 500 with its request id,
counted in /metrics and logged with its traceback once. A real service on 127.0.0.1 with the
flight features wrapped to fail on one legal value (``poisoned_features``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.harness import Harness
from mlplatform_tests.serving.poisoned_features import POISON
from mlplatform_tests.serving.server import AUTH, TOKEN, AppServer

ROUNDS, VALID_PER_ROUND = 10, 15  # the attack that failed 65 of 150 valid requests


@pytest.fixture(scope="module")
def poisoned_service(
    trained_flights: tuple[Harness, dict], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Harness, AppServer]]:
    harness, _ = trained_flights
    function = "mlplatform_tests.serving.poisoned_features:build_features"
    spec = harness.spec.model_copy(
        update={"features": harness.spec.features.model_copy(update={"function": function})}
    )
    client = harness.client()
    client.set_registered_model_alias("flight_delay", "champion", "1")
    pipeline = build_pipeline(spec, harness.home / "warehouse", harness.client, poll_seconds=0.2)
    log = PredictionLog(tmp_path_factory.mktemp("predictions"), 0.2)
    try:
        with AppServer(create_app({"flight_delay": pipeline}, log, TOKEN, max_batch=50)) as server:
            yield harness, server
    finally:
        client.delete_registered_model_alias("flight_delay", "champion")


def _records(harness: Harness, n: int) -> list[dict]:
    raw = harness.store.read("flight_delay", "raw", "2013-01-20").head(n)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())


async def _send_together(url: str, bodies: list[tuple[str, dict]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(headers=AUTH, timeout=30) as http:
        return await asyncio.gather(
            *(http.post(url, json=body, headers={"X-Request-Id": rid}) for rid, body in bodies)
        )


def test_poison_requests_fail_alone_and_every_valid_request_is_answered(
    poisoned_service: tuple[Harness, AppServer], caplog: pytest.LogCaptureFixture
) -> None:
    harness, server = poisoned_service
    url = f"{server.url}/v1/pipelines/flight_delay/predict"
    records = _records(harness, VALID_PER_ROUND)
    alone = {
        n: httpx.post(url, json=record, headers=AUTH).json()["delayed_probability"]
        for n, record in enumerate(records)
    }
    caplog.set_level(logging.ERROR, logger="mlplatform.serving.app")

    valid: list[tuple[int, httpx.Response]] = []
    poisoned: list[httpx.Response] = []
    for round_ in range(ROUNDS):
        bodies = [(f"v-{round_}-{n}", record) for n, record in enumerate(records)]
        bodies.insert(round_ % VALID_PER_ROUND, (f"p-{round_}", {**records[0], "dest": POISON}))
        answers = asyncio.run(_send_together(url, bodies))
        for (rid, _), answer in zip(bodies, answers, strict=True):
            if rid.startswith("p-"):
                poisoned.append(answer)
            else:
                valid.append((int(rid.rsplit("-", 1)[1]), answer))
    batch = httpx.post(url, json={"records": [records[1], {**records[1], "dest": POISON}]}, headers=AUTH)
    metrics = httpx.get(f"{server.url}/metrics").text

    assert [a.status_code for _, a in valid] == [200] * ROUNDS * VALID_PER_ROUND
    assert all(a.json()["delayed_probability"] == pytest.approx(alone[n], abs=1e-12) for n, a in valid)
    assert [a.status_code for a in poisoned] == [500] * ROUNDS
    assert [a.json() for a in poisoned] == [
        {"error": "internal error", "request_id": f"p-{n}"} for n in range(ROUNDS)
    ]
    assert batch.status_code == 500 and "request_id" in batch.json()  # a batch fails as one request
    assert (
        f'mlplatform_requests_total{{pipeline="flight_delay",status="500",variant="none"}} {ROUNDS + 1}.0'
        in (metrics)
    )
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == ROUNDS + 1  # once per failed request, never per batch it was in
    assert all("poison record" in str(r.exc_info[1]) for r in tracebacks if r.exc_info)
    assert httpx.get(f"{server.url}/health").status_code == 200
