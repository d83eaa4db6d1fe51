"""The rollout controller rolls back a bad canary under live traffic, by itself, failing no request.

The challenger is a real LightGBM model that cannot split (every leaf needs more rows than there
are), so it predicts one constant for every flight: it answers, with finite numbers, so only the
live evidence can tell it is useless. A client thread keeps sending flights to a real server on
127.0.0.1 while the test plays the daemon: it evaluates the rollout controller sensor and carries
out what it asks for.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from mlplatform.core.spec import RolloutStage
from mlplatform.core.training.tracking import load_version
from mlplatform_tests.harness import Harness, failure_messages
from mlplatform_tests.serving.server import Service, Traffic, wait_for_variant

CONTROLLER = "flight_delay_rollout_controller"


def _constant_pipeline(flights: Harness) -> Harness:
    """The same pipeline, home and instance, with a model that cannot split and a one-stage canary."""
    model = flights.spec.model.model_copy(
        update={"params": {**flights.spec.model.params, "min_data_in_leaf": 10**7}}
    )
    rollout = flights.spec.rollout.model_copy(
        update={
            "shadow_first": False,
            "stages": [RolloutStage(traffic=0.5, min_requests=100_000, min_minutes=60)],
        }
    )
    return Harness(
        flights.spec.model_copy(update={"model": model, "rollout": rollout}), flights.home, flights.instance
    )


@pytest.mark.integration
def test_controller_rolls_back_a_constant_canary_under_live_traffic(champion: Harness, caplog) -> None:
    flights = champion
    client = flights.client()
    bad = _constant_pipeline(flights)
    trained = bad.materialize(["model"], partition="2013-01-21")
    assert trained.success, failure_messages(trained)
    scores = load_version("flight_delay", "2").predict(
        flights.store.read("flight_delay", "features", "2013-01-20")
    )
    assert np.ptp(scores) == 0  # one constant for every flight
    client.set_registered_model_alias("flight_delay", "challenger", "2")
    definitions = bad.definitions
    raw = flights.store.read("flight_delay", "raw", "2013-01-20")
    records = json.loads(raw.select(flights.spec.serving_columns).write_json())

    with Service(flights) as service:
        traffic = Traffic(service.url, records)
        traffic.start()
        start = list(bad.tick(CONTROLLER).run_requests or [])
        assert [r.run_key for r in start] == ["start:2"]
        deployed = bad.materialize(["deployment"])  # smoke test (a constant is finite), then 50% canary
        assert deployed.success, failure_messages(deployed)
        wait_for_variant(traffic, "challenger")
        deadline, verdict = time.monotonic() + 60, []
        while not verdict and time.monotonic() < deadline:
            time.sleep(0.5)  # the service flushes its log every 0.2 s
            verdict = list(bad.tick(CONTROLLER).run_requests or [])
        assert [r.job_name for r in verdict] == ["flight_delay_rollback"], "no rollback within 60 s"
        with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
            rolled = definitions.resolve_job_def("flight_delay_rollback").execute_in_process(
                instance=flights.instance, tags=dict(verdict[0].tags)
            )
        assert rolled.success
        answered = len(traffic.answers)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            a["variant"] == "challenger" for a in traffic.answers[-20:]
        ):
            time.sleep(0.2)
        time.sleep(1.0)
        traffic.stop.set()
        traffic.join(timeout=30)

    assert traffic.failures == []
    served = [(a["variant"], a["model_version"]) for a in traffic.answers]
    assert ("challenger", "2") in served[:answered]
    assert set(served[-20:]) == {("champion", "1")}
    reason = verdict[0].tags["mlplatform/reason"]
    assert "scores collapsed" in reason
    assert "ALERT" in caplog.text and "rollback" in caplog.text and "scores collapsed" in caplog.text
    assert {a: str(v) for a, v in client.get_registered_model("flight_delay").aliases.items()} == {
        "champion": "1"
    }
