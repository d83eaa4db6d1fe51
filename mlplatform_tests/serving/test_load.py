"""Sustained traffic through a whole rollout: shadow, canary stages, promotion, rollback.

A client thread sends single-record requests to a real server on 127.0.0.1 (bounded: at most
4,000 requests and 90 s) while the test drives the rollout through the deployment asset and the
rollback job, exactly as Dagster does; the service follows the registry by polling it.
"""

from __future__ import annotations

import json
import time

import polars as pl
import pytest

from mlplatform.serving.prediction_log import read_log
from mlplatform_tests.harness import Harness, failure_messages
from mlplatform_tests.serving.server import Service, Traffic, wait_for_variant


@pytest.mark.integration
def test_rollout_and_rollback_under_load_fail_no_request_and_log_each_once(
    two_versions: Harness, tmp_path
) -> None:
    client = two_versions.client()
    raw = two_versions.store.read("flight_delay", "raw", "2013-01-20").head(50)
    records = json.loads(raw.select(two_versions.spec.serving_columns).write_json())
    definitions = two_versions.definitions

    with Service(two_versions) as service:
        traffic = Traffic(service.url, records)
        traffic.start()
        time.sleep(1.0)
        client.set_registered_model_alias("flight_delay", "challenger", "2")
        actions = []
        for _ in range(6):  # shadow, 5%, 25%, 50%, 100%, promote
            result = two_versions.materialize(["deployment"])
            assert result.success, failure_messages(result)
            actions.append(
                result.get_asset_materialization_events()[0].materialization.metadata["action"].value
            )
            time.sleep(1.0)
            if actions[-1] == "advance":
                wait_for_variant(traffic, "challenger")
        assert (
            definitions.resolve_job_def("flight_delay_rollback")
            .execute_in_process(instance=two_versions.instance)
            .success
        )
        time.sleep(1.5)
        traffic.stop.set()
        traffic.join(timeout=30)
    assert actions == ["start", "advance", "advance", "advance", "advance", "promote"]

    assert traffic.failures == []
    assert len(traffic.answers) > 200
    served = [(a["variant"], a["model_version"]) for a in traffic.answers]
    assert ("challenger", "2") in served and ("champion", "1") in served and ("champion", "2") in served
    assert served[-1] == ("champion", "1")  # after the rollback

    logged = read_log(service.log_root, "flight_delay")
    answered = logged.filter(pl.col("variant") != "shadow")
    assert answered.height == len(traffic.answers)
    assert answered["request_id"].n_unique() == answered.height
    assert set(answered["request_id"]) == {a["request_id"] for a in traffic.answers}
    shadow = logged.filter(pl.col("variant") == "shadow")
    assert shadow.height > 0 and set(shadow["model_version"]) == {"2"}

    # The day's log goes into the warehouse, and the A/B report compares the variants that
    # answered on the labels of that day.
    loaded = two_versions.materialize(["prediction_log", "live_performance"], partition="2013-01-20")
    assert loaded.success, failure_messages(loaded)
    report = {
        e.asset_key.path[-1]: e.materialization.metadata for e in loaded.get_asset_materialization_events()
    }
    assert report["prediction_log"]["dagster/row_count"].value == logged.height
    assert report["live_performance"]["labelled_predictions"].value == answered.height
    assert 0 <= report["live_performance"]["p_value"].value <= 1
    assert "challenger" in report["live_performance"]["variants"].value
