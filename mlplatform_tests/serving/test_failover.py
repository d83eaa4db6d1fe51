"""A challenger that fails to score never fails a request: the champion answers for it, and the
failure is logged as the challenger's error, which the rollout controller judges."""

from __future__ import annotations

import json
import time

import httpx
import mlflow
import polars as pl
import pytest

from mlplatform.core.deployment.apply import apply_step, read_state
from mlplatform.core.deployment.rollout import step
from mlplatform.core.deployment.rollout_control import judge
from mlplatform.core.monitoring.live import stage_statistics
from mlplatform.serving.prediction_log import read_log
from mlplatform_tests.harness import Harness
from mlplatform_tests.serving.server import AUTH, Service


def _register_broken_challenger(harness: Harness) -> str:
    """v1's booster with an encoding that asks for a feature the service does not compute (a model
    trained on a newer feature set than the serving code): it raises on every predict."""
    client = harness.client()
    v1 = client.get_model_version("flight_delay", "1")
    encoding = mlflow.artifacts.load_dict(f"runs:/{v1.run_id}/encoding.json")
    encoding["numeric"] = [*encoding["numeric"], "gate_number"]
    experiment = client.get_run(v1.run_id).info.experiment_id
    with mlflow.start_run(experiment_id=experiment, run_name="broken-encoding") as run:
        mlflow.log_dict(encoding, "encoding.json")
    version = client.create_model_version(
        "flight_delay", v1.source, run_id=run.info.run_id, tags=dict(v1.tags)
    )
    return str(version.version)


@pytest.mark.integration
def test_a_failing_canary_is_answered_for_by_the_champion_and_rolled_back(champion: Harness) -> None:
    flights = champion
    client = flights.client()
    broken = _register_broken_challenger(flights)
    client.set_registered_model_alias("flight_delay", "challenger", broken)
    spec = flights.spec.model_copy(
        update={"rollout": flights.spec.rollout.model_copy(update={"shadow_first": False})}
    )
    apply_step(client, "flight_delay", step(read_state(client, "flight_delay"), spec.rollout))  # canary 5%
    raw = flights.store.read("flight_delay", "raw", "2013-01-20").head(400)
    records = json.loads(raw.select(flights.spec.serving_columns).write_json())

    with Service(flights) as service:
        time.sleep(0.5)  # one registry poll: the canary state is loaded
        url = f"{service.url}/v1/pipelines/flight_delay/predict"
        with httpx.Client(headers=AUTH, timeout=10) as http:
            answers = [
                http.post(url, json=r, headers={"X-Request-Id": f"r-{n}"}) for n, r in enumerate(records)
            ]
            batch = http.post(url, json={"records": records[:40]}, headers={"X-Request-Id": "b"})
            metrics = http.get(f"{service.url}/metrics").text

    assert [a.status_code for a in answers] == [200] * len(records) and batch.status_code == 200
    assert {(a.json()["variant"], a.json()["model_version"]) for a in answers} == {("champion", "1")}
    assert {p["variant"] for p in batch.json()["predictions"]} == {"champion"}
    log = read_log(service.log_root, "flight_delay")
    failed = log.filter(pl.col("status") == "error")
    assert (
        failed.height > 0
        and set(failed["variant"]) == {"challenger"}
        and set(failed["model_version"]) == {broken}
    )
    assert failed["prediction"].is_nan().all()
    answered = log.filter(pl.col("status") == "ok")
    assert answered.height == len(records) + 40 and set(answered["variant"]) == {"champion"}
    assert 'variant="challenger"' in metrics and "failed_over" in metrics

    champion, challenger, _ = stage_statistics(log, "1", broken, None, flights.spec.entity, "delayed")
    assert challenger.requests == failed.height and challenger.error_rate == 1.0
    verdict = judge(read_state(client, "flight_delay"), spec.rollout, 60.0, champion, challenger)
    assert verdict.action == "rollback" and "error rate 100.0%" in verdict.summary
