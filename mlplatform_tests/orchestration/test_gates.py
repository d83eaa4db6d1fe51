"""Quality gates on real 2013 flights: what closes, what stays open, and that closing blocks.

These use the flight spec's own gates and 56-day window, so what they assert is what the platform
decides on the real data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from mlplatform.core.deployment.registry import aliases
from mlplatform.core.pipelines import load_spec
from mlplatform.core.training.fit import TimeSplit
from mlplatform.core.training.tracking import load_version
from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


def _materialized(result: dg.ExecuteInProcessResult, name: str) -> dict | None:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == name]
    return {k: v.value for k, v in events[0].materialization.metadata.items()} if events else None


def _train(harness: Harness, as_of: str) -> dg.ExecuteInProcessResult:
    return harness.materialize(["model", "evaluation", "candidate"], partition=as_of)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """2013-01-01..2013-03-08 ingested (67 days): room for models as of 03-01 and 03-08."""
    with dg.instance_for_test() as instance:
        harness = Harness(load_spec("flight_delay"), tmp_path_factory.mktemp("gated"), instance)
        harness.replay("2013-01-01", 67)
        harness.materialize(harness.spec.static_references)
        data = harness.materialize(harness.spec.daily_tables, first="2013-01-01", last="2013-03-08")
        assert data.success, failure_messages(data)
        yield harness


def test_first_good_model_becomes_champion_and_a_better_one_challenger(ingested: Harness) -> None:
    first = _train(ingested, "2013-03-01")
    assert first.success, failure_messages(first)
    assert all(e.passed for e in check_evaluations(first))
    assert "bootstrapping" in _materialized(first, "evaluation")["gate_summary"]
    assert aliases(ingested.client(), "flight_delay") == {"champion": "1"}

    second = _train(ingested, "2013-03-08")
    assert second.success, failure_messages(second)
    evaluation = _materialized(second, "evaluation")
    candidate = _materialized(second, "candidate")
    assert candidate["decision"] == "approved" and candidate["alias_set"] == "challenger"
    assert aliases(ingested.client(), "flight_delay") == {"champion": "1", "challenger": "2"}
    version = ingested.client().get_model_version("flight_delay", "2")
    assert version.tags["decision"] == "approved" and version.tags["gate.beats_champion"] == "passed"
    assert '"metric": "auc"' in version.tags["decision_reasons"]

    # The champion was scored on exactly the new model's test rows: same fingerprint, and its AUC
    # recomputed here on those rows equals what the evaluation reported.
    assert evaluation["champion_version"] == "1"
    assert evaluation["champion_rows_fingerprint"] == evaluation["test_rows_fingerprint"]
    split = TimeSplit.as_of(dt.date(2013, 3, 8), ingested.spec.model)
    test = ingested.store.read_days("flight_delay", "features", split.test)
    champion_auc = roc_auc_score(test["delayed"].to_numpy(), load_version("flight_delay", "1").predict(test))
    assert evaluation["champion_auc"] == pytest.approx(champion_auc, abs=1e-12)
    assert evaluation["champion_rows"] == test.height == evaluation["test_rows"]


def test_model_trained_on_shuffled_labels_is_blocked_and_no_alias_moves(
    tmp_path, instance: dg.DagsterInstance
) -> None:
    harness = Harness(load_spec("flight_delay"), tmp_path / "shuffled", instance)
    harness.replay("2013-01-01", 64)
    harness.materialize(harness.spec.static_references)
    assert harness.materialize(harness.spec.daily_tables, first="2013-01-01", last="2013-03-05").success
    assert _train(harness, "2013-02-26").success
    before = aliases(harness.client(), "flight_delay")
    split = TimeSplit.as_of(dt.date(2013, 3, 5), harness.spec.model)
    rng = np.random.default_rng(0)
    for day in [*split.train, *split.validation]:
        frame = harness.store.read("flight_delay", "features", day)
        harness.store.write(
            "flight_delay",
            "features",
            frame.with_columns(pl.Series("delayed", rng.permutation(frame["delayed"].to_numpy()))),
            day,
        )

    result = _train(harness, "2013-03-05")

    assert not result.success
    failed = {e.check_name for e in check_evaluations(result) if not e.passed}
    assert "metric_floors" in failed
    assert "blocking asset check" in failure_messages(result)
    assert _materialized(result, "evaluation") is not None
    assert _materialized(result, "candidate") is None
    assert aliases(harness.client(), "flight_delay") == before == {"champion": "1"}
    assert harness.client().get_model_version("flight_delay", "2").tags["gate.metric_floors"] == "failed"


def _corrupt(path, how: str) -> None:
    frame = pl.read_csv(path, infer_schema=False)
    changed = {
        "renamed column": lambda f: f.rename({"dest": "destination"}),
        "duplicated keys": lambda f: pl.concat([f, f.head(5)]),
        "all-null column": lambda f: f.with_columns(pl.lit("NA").alias("tailnum")),
        "header only": lambda f: f.clear(),
        "wrong type": lambda f: f.with_columns(pl.lit("soon").alias("sched_dep_time")),
    }[how](frame)
    changed.write_csv(path)


@pytest.mark.parametrize(
    ("how", "check", "named"),
    [
        ("renamed column", "contract", "column 'dest': missing"),
        ("duplicated keys", "primary_key", "appear more than once"),
        ("all-null column", "completeness", "'tailnum' is 100.0% null"),
        ("header only", "volume", "no rows"),
        ("wrong type", "contract", "'sched_dep_time'"),
    ],
)
def test_corrupt_partition_is_blocked_before_features(
    flights: Harness, how: str, check: str, named: str
) -> None:
    flights.replay("2013-01-01", 4)
    flights.materialize(flights.spec.static_references)
    assert flights.materialize(flights.spec.daily_tables, first="2013-01-01", last="2013-01-03").success
    _corrupt(flights.landing / "flights/2013-01-04.csv", how)

    result = flights.materialize(flights.spec.daily_tables, partition="2013-01-04")

    assert not result.success
    failed = [e for e in check_evaluations(result) if not e.passed]
    assert check in {e.check_name for e in failed}
    assert named in failure_messages(result)
    assert not flights.store.exists("flight_delay", "raw", "2013-01-04")
    assert not flights.store.exists("flight_delay", "features", "2013-01-04")
    assert flights.store.days("flight_delay", "features") == ["2013-01-01", "2013-01-02", "2013-01-03"]


def leaky_features(flights: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    from mlplatform.defs.flight_delay.features import build_features

    return build_features(flights, references).with_columns(precip=pl.col("dep_delay"))


def test_feature_function_reaching_for_a_post_event_column_is_blocked(
    flights: Harness, instance: dg.DagsterInstance
) -> None:
    features = flights.spec.features.model_copy(update={"function": f"{__name__}:leaky_features"})
    leaky = Harness(flights.spec.model_copy(update={"features": features}), flights.home, instance)
    leaky.replay("2013-01-01", 1)
    leaky.materialize(leaky.spec.static_references)

    result = leaky.materialize(leaky.spec.daily_tables, partition="2013-01-01")

    assert not result.success
    failed = [e for e in check_evaluations(result) if not e.passed]
    assert [(e.asset_key.path[-1], e.check_name) for e in failed] == [("features", "no_label_leakage")]
    assert "uses 'dep_delay'" in failure_messages(result)
    # All or nothing across the run: raw and weather of the day are not stored either.
    assert leaky.store.days("flight_delay", "raw") == leaky.store.days("flight_delay", "weather") == []
    assert not leaky.store.exists("flight_delay", "features", "2013-01-01")
