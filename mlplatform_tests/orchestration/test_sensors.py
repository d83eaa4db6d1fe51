"""Each sensor on a real test instance with ``build_sensor_context``: it fires exactly when it should,
not otherwise, and its cursor carries it across a restart (a new evaluation given the stored cursor).

One module-scoped pipeline holds real 2013 flights (22 days ingested) and a champion, the version
trained as of 2013-01-21; the tests build the rest (a drifted day, prediction logs) themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from mlplatform.cli import main
from mlplatform.core.data.sql import pipeline_views
from mlplatform.core.monitoring.triggers import next_day
from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec, RolloutStage
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.harness import Harness, failure_messages, small_window
from mlplatform_tests.log_rows import log_row

CHAMPION_AS_OF = "2013-01-21"


def _spec() -> PipelineSpec:
    """The flight pipeline with a short window, a 2-day cooldown and quick rollout stages."""
    spec = small_window(load_spec("flight_delay"))
    monitoring = spec.monitoring.model_copy(update={"retrain_cooldown_days": 2})
    quick = RolloutStage(traffic=0.5, min_requests=50, min_minutes=0)
    rollout = spec.rollout.model_copy(update={"shadow": quick, "stages": [quick], "min_labelled": 100})
    return spec.model_copy(update={"monitoring": monitoring, "rollout": rollout})


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with dg.instance_for_test() as instance:
        harness = Harness(_spec(), tmp_path_factory.mktemp("monitored"), instance)
        harness.make_champion("2013-01-01", 22, CHAMPION_AS_OF)
        yield harness


def test_landing_sensor_requests_each_new_or_changed_file_once(flights: Harness) -> None:
    flights.replay("2013-01-01", 2)
    first = flights.tick("flight_delay_landing")
    requested = {r.partition_key: r for r in first.run_requests}
    assert set(requested) == {"2013-01-01", "2013-01-02"}
    # The day's features in the same run: the new delivery and its features are stored together.
    assert {k.to_user_string() for k in requested["2013-01-01"].asset_selection} == {
        "flight_delay/raw",
        "flight_delay/weather",
        "flight_delay/features",
    }

    # Nothing new: skip, and the same after a restart with the stored cursor.
    again = flights.tick("flight_delay_landing", first.cursor)
    assert again.run_requests == [] and "no new or changed file" in again.skip_message

    # The requested runs ingest both days. Then a file that changes is ingested again (that table
    # and features), and a new day is requested once.
    ran = flights.materialize(["raw", "weather"], first="2013-01-01", last="2013-01-02")
    assert ran.success, failure_messages(ran)
    path = flights.landing / "flights" / "2013-01-02.csv"
    path.write_text("\n".join(path.read_text().splitlines()[:300]) + "\n")
    flights.replay("2013-01-03", 1)
    changed = flights.tick("flight_delay_landing", first.cursor)
    assert sorted(
        (r.partition_key, tuple(k.path[-1] for k in r.asset_selection)) for r in changed.run_requests
    ) == [
        ("2013-01-02", ("features", "raw")),
        ("2013-01-03", ("features", "raw", "weather")),
    ]
    assert flights.tick("flight_delay_landing", changed.cursor).run_requests == []


def test_landing_sensor_waits_for_the_done_marker_of_a_delivery(flights: Harness) -> None:
    flights.replay("2013-01-01", 1)
    marker = flights.landing / "flights" / "2013-01-01.csv.done"
    count = marker.read_text()
    marker.unlink()  # the data file is there, the upstream has not said it is complete

    waiting = flights.tick("flight_delay_landing")
    assert [tuple(k.path[-1] for k in r.asset_selection) for r in waiting.run_requests] == [
        ("features", "weather")
    ]

    marker.write_text(count)
    done = flights.tick("flight_delay_landing", waiting.cursor)
    assert [tuple(k.path[-1] for k in r.asset_selection) for r in done.run_requests] == [("features", "raw")]


def test_landing_sensor_without_a_cursor_skips_files_already_ingested(flights: Harness) -> None:
    flights.replay("2013-01-01", 2)
    flights.materialize(flights.spec.static_references)
    assert flights.materialize(["raw", "weather"], first="2013-01-01", last="2013-01-01").success
    result = flights.tick("flight_delay_landing")
    assert [r.partition_key for r in result.run_requests] == ["2013-01-02"]


def _drifted_day(harness: Harness, source: str, day: str) -> None:
    """A day whose traffic changed: the flights of ``source`` rescheduled six hours later."""
    frame = harness.store.read("flight_delay", "features", source).with_columns(
        (pl.col("sched_hour") + 6) % 24, pl.col("day") + (int(day[-2:]) - int(source[-2:]))
    )
    harness.store.write("flight_delay", "features", frame, day)


def test_drift_sensor_requests_a_gated_retraining_only_for_drifted_days(monitored: Harness, caplog) -> None:
    _drifted_day(monitored, "2013-01-22", "2013-01-23")
    runs = [monitored.materialize(["drift"], partition=day) for day in ("2013-01-22", "2013-01-23")]
    assert all(r.success for r in runs), [failure_messages(r) for r in runs]
    measured = {
        e.partition: e.materialization.metadata["drifted_features"].value
        for r in runs
        for e in r.get_asset_materialization_events()
    }
    assert measured["2013-01-22"] == {} and list(measured["2013-01-23"]) == ["sched_hour"]

    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        result = monitored.tick("flight_delay_drift")
    assert [r.partition_key for r in result.run_requests] == ["2013-01-24"]
    request = result.run_requests[0]
    assert (
        request.tags["mlplatform/trigger"] == "drift" and "sched_hour=" in request.tags["mlplatform/drifted"]
    )
    assert "drifted on 2013-01-23" in caplog.text

    # A restart with the stored cursor does not request it again.
    assert "no new drift measurement" in monitored.tick("flight_delay_drift", result.cursor).skip_message


def _log_day(
    harness: Harness, day: str, scores_from_labels: bool, version: str = "1", flights: slice = slice(None)
) -> None:
    """Logged answers for every flight of ``day`` (or a slice of them): informative scores, or noise
    (AUC about 0.5)."""
    features = harness.store.read("flight_delay", "features", day)
    raw = harness.store.read("flight_delay", "raw", day)
    rng = np.random.default_rng(int(day[-2:]))
    label = features["delayed"].to_numpy()
    scores = (
        np.clip(0.5 * label + rng.uniform(0, 0.5, len(label)), 0, 1)
        if scores_from_labels
        else rng.uniform(0, 1, len(label))
    )
    keys = features.select(pl.col(c).cast(raw.schema[c]) for c in harness.spec.entity)
    inputs = keys.join(raw, on=harness.spec.entity, how="left", maintain_order="left")
    log = PredictionLog(harness.home / "predictions")
    now = dt.datetime.now(dt.UTC)
    rows = [
        log_row(f"{day}-{i}", now, day, row, float(score), model_version=version, latency_ms=2.0)
        for i, (row, score) in enumerate(
            zip(inputs.select(harness.spec.serving_columns).to_dicts(), scores, strict=True)
        )
    ]
    log.append(rows[flights])
    log.close()


def test_performance_sensor_retrains_after_the_days_below_the_floor(monitored: Harness, caplog) -> None:
    _log_day(monitored, "2013-01-20", scores_from_labels=True)
    _log_day(monitored, "2013-01-21", scores_from_labels=False)
    runs = [
        monitored.materialize(["prediction_log", "live_performance"], partition=d)
        for d in ("2013-01-20", "2013-01-21")
    ]
    assert all(r.success for r in runs), [failure_messages(r) for r in runs]
    served = {
        e.partition: e.materialization.metadata["served_metric"].value
        for r in runs
        for e in r.get_asset_materialization_events()
        if e.asset_key.path[-1] == "live_performance"
    }
    assert served["2013-01-20"] > 0.8 and served["2013-01-21"] < 0.6
    checks = [
        e.event_specific_data for e in runs[1].all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert [(c.check_name, c.passed) for c in checks] == [("performance_floor", False)]

    one_bad_day = monitored.tick("flight_delay_performance")
    assert one_bad_day.run_requests == [] and "1 of 2 consecutive bad days" in one_bad_day.skip_message

    _log_day(monitored, "2013-01-22", scores_from_labels=False)
    assert monitored.materialize(["prediction_log", "live_performance"], partition="2013-01-22").success
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        two_bad_days = monitored.tick("flight_delay_performance", one_bad_day.cursor)
    assert [r.partition_key for r in two_bad_days.run_requests] == ["2013-01-23"]
    assert two_bad_days.run_requests[0].tags["mlplatform/bad_days"] == "2013-01-21,2013-01-22"
    assert "live auc below" in caplog.text
    assert monitored.tick("flight_delay_performance", two_bad_days.cursor).run_requests == []

    # The sensor also holds a day against the served model's own test AUC, once it has one.
    client = monitored.client()
    client.log_metric(client.get_model_version("flight_delay", "1").run_id, "test_auc", 0.71)
    again = monitored.materialize(["live_performance"], partition="2013-01-20")
    expected = again.get_asset_materialization_events()[0].materialization.metadata["expected_metric"].value
    assert expected == pytest.approx(0.71)


def test_late_log_files_rebuild_the_day_and_its_live_performance(monitored: Harness) -> None:
    day, unlabelled = "2013-01-17", "2013-01-30"  # the features of 01-30 (its labels) never arrive
    _log_day(monitored, day, scores_from_labels=True, flights=slice(0, 200))
    built = monitored.materialize(["prediction_log", "live_performance"], partition=day)
    assert built.success, failure_messages(built)
    nothing_late = monitored.tick("flight_delay_late_log")
    assert nothing_late.run_requests == [] and "built from every file" in nothing_late.skip_message

    # The rest of the day's answers are flushed after the day was built; another day's log too.
    _log_day(monitored, day, scores_from_labels=True, flights=slice(200, None))
    other = PredictionLog(monitored.home / "predictions")
    other.append([log_row("unlabelled-0", dt.datetime.now(dt.UTC), unlabelled, {"flight": 1}, 0.5)])
    other.close()
    late = monitored.tick("flight_delay_late_log", nothing_late.cursor)
    assert [(r.partition_key, r.tags["mlplatform/trigger"]) for r in late.run_requests] == [(day, "late_log")]
    job = monitored.definitions.resolve_job_def("flight_delay_late_log")
    assert {k.path[-1] for k in job.asset_layer.executable_asset_keys} == {
        "prediction_log",
        "live_performance",
    }

    rebuilt = monitored.materialize(
        ["prediction_log", "live_performance"], partition=day
    )  # the request's run
    assert rebuilt.success, failure_messages(rebuilt)
    flights = monitored.store.read("flight_delay", "features", day).height
    assert flights > 200
    assert monitored.store.read("flight_delay", "prediction_log", day).height == flights
    live = {
        e.asset_key.path[-1]: e.materialization.metadata for e in rebuilt.get_asset_materialization_events()
    }
    assert live["live_performance"]["labelled_predictions"].value == flights
    again = monitored.tick("flight_delay_late_log", late.cursor)
    assert again.run_requests == [] and "built from every file" in again.skip_message


def test_sql_has_a_view_for_every_table_the_pipeline_writes(
    monitored: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    day = "2013-01-16"
    _log_day(monitored, day, scores_from_labels=True)
    ran = monitored.materialize(["prediction_log", "live_performance", "drift"], partition=day)
    assert ran.success, failure_messages(ran)
    monkeypatch.setenv("MLPLATFORM_WAREHOUSE", str(monitored.home / "warehouse"))
    capsys.readouterr()

    for view in pipeline_views(monitored.spec):
        assert main(["sql", f"SELECT count(*) AS n FROM {view}"]) == 0, capsys.readouterr().err
    assert main(["sql", f"SELECT variant, rows FROM flight_delay_live_performance WHERE day = '{day}'"]) == 0
    flights = monitored.store.read("flight_delay", "features", day).height
    assert f"champion ┆ {flights}" in capsys.readouterr().out

    assert main(["sql", "SELECT * FROM flight_delay_live_performence"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "flight_delay_live_performance" in error  # one line, naming the views


def test_freshness_sensor_alerts_once_per_stale_state_and_retrains_a_stale_model(
    monitored: Harness, caplog
) -> None:
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    quiet = monitored.tick("flight_delay_freshness")
    assert quiet.run_requests == []

    def report(name: str, state: FreshnessState) -> None:
        monitored.instance.report_runless_asset_event(
            FreshnessStateChange(
                key=monitored.key(name),
                new_state=state,
                previous_state=FreshnessState.PASS,
                state_change_timestamp=dt.datetime.now(dt.UTC).timestamp(),
            )
        )

    report("raw", FreshnessState.FAIL)
    report("candidate", FreshnessState.FAIL)
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        stale = monitored.tick("flight_delay_freshness", quiet.cursor)
    assert "raw data is FAIL" in caplog.text and "the champion model is FAIL" in caplog.text
    newest = monitored.store.days("flight_delay", "features")[-1]
    assert [r.partition_key for r in stale.run_requests] == [next_day(newest)]
    assert stale.run_requests[0].tags["mlplatform/trigger"] == "stale_model"
    assert monitored.tick("flight_delay_freshness", stale.cursor).run_requests == []


def test_nightly_schedule_retrains_on_the_newest_data_unless_covered(monitored: Harness) -> None:
    definitions = monitored.definitions
    schedule = definitions.resolve_schedule_def("flight_delay_nightly")
    with dg.build_schedule_context(
        instance=monitored.instance,
        resources=monitored.resources,
        repository_def=definitions.get_repository_def(),
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    newest = monitored.store.days("flight_delay", "features")[-1]
    assert [r.partition_key for r in requests] == [next_day(newest)]
    assert requests[0].tags["mlplatform/trigger"] == "schedule"


def test_rollout_controller_skips_before_any_model_is_registered(flights: Harness) -> None:
    assert flights.client().search_registered_models() == []

    assert (
        flights.tick("flight_delay_rollout_controller").skip_message == "no challenger: nothing to roll out"
    )


def test_rollout_controller_starts_advances_and_rolls_back_on_live_evidence(
    monitored: Harness, caplog
) -> None:
    client = monitored.client()
    v1 = client.get_model_version("flight_delay", "1")
    v2 = client.create_model_version("flight_delay", v1.source, run_id=v1.run_id, tags=dict(v1.tags))
    assert (
        monitored.tick("flight_delay_rollout_controller").skip_message == "no challenger: nothing to roll out"
    )
    client.set_registered_model_alias("flight_delay", "challenger", v2.version)

    start = monitored.tick("flight_delay_rollout_controller").run_requests
    assert [(r.job_name, r.run_key) for r in start] == [("flight_delay_deploy", f"start:{v2.version}")]
    assert monitored.materialize(["deployment"]).success  # smoke test, then shadow

    waiting = monitored.tick("flight_delay_rollout_controller")
    assert waiting.run_requests == [] and "0 of 50 requests" in waiting.skip_message

    healthy = _stage_log(monitored, v2.version, challenger_scores=None)
    advance = monitored.tick("flight_delay_rollout_controller").run_requests
    assert [r.job_name for r in advance] == ["flight_delay_deploy"], healthy
    assert monitored.materialize(["deployment"]).success  # canary at 50%
    assert client.get_registered_model("flight_delay").tags["rollout.strategy"] == "canary"

    _stage_log(monitored, v2.version, challenger_scores=0.42)  # the challenger now predicts a constant
    verdict = monitored.tick("flight_delay_rollout_controller").run_requests
    assert [r.job_name for r in verdict] == ["flight_delay_rollback"]
    assert "scores collapsed" in verdict[0].tags["mlplatform/reason"]
    rollback = monitored.definitions.resolve_job_def("flight_delay_rollback")
    with caplog.at_level(logging.WARNING, logger="mlplatform.alerts"):
        assert rollback.execute_in_process(instance=monitored.instance, tags=verdict[0].tags).success
    assert "rollback" in caplog.text and "scores collapsed" in caplog.text
    aliases = client.get_registered_model("flight_delay").aliases
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "1"}


def _stage_log(harness: Harness, challenger: str, challenger_scores: float | None) -> Path:
    """Champion answers and challenger answers of the current stage, logged now."""
    features = harness.store.read("flight_delay", "features", "2013-01-20").head(300)
    rng = np.random.default_rng(5)
    good = np.clip(0.5 * features["delayed"].to_numpy() + rng.uniform(0, 0.5, features.height), 0, 1)
    log = PredictionLog(harness.home / "predictions")
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i, (row, score) in enumerate(zip(features.select(harness.spec.entity).to_dicts(), good, strict=True)):
        variant, version = ("challenger", challenger) if i % 2 else ("champion", "1")
        value = (
            challenger_scores if variant == "challenger" and challenger_scores is not None else float(score)
        )
        rows.append(
            log_row(
                f"stage-{now.timestamp()}-{i}",
                now,
                "2013-01-20",
                row,
                value,
                model_version=version,
                variant=variant,
                latency_ms=3.0,
            )
        )
    log.append(rows)
    log.close()
    return harness.home / "predictions"
