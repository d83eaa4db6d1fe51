"""Per-partition gates as the Dagster UI shows them: each check's Partitions tab reads GraphQL
``partitionStatuses``, which counts an evaluation for a day only while it targets that day's latest
materialization. Real flights, a one-run backfill, then a corrupt delivery of one day."""

from __future__ import annotations

import dagster as dg
import polars as pl

from mlplatform_tests.dagster_ui import check_statuses, code_location
from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


def test_every_day_of_a_one_run_backfill_shows_its_gates_and_a_refused_day_its_failure(
    flights: Harness,
) -> None:
    flights.replay("2013-01-01", 3)
    flights.materialize(flights.spec.static_references)
    result = flights.materialize(flights.spec.daily_tables, first="2013-01-01", last="2013-01-03")
    assert result.success, failure_messages(result)

    evaluations = check_evaluations(result)
    assert {e.partition for e in evaluations} == {"2013-01-01", "2013-01-02", "2013-01-03"}
    for evaluation in evaluations:  # each evaluation names its own day's materialization of this run
        latest = flights.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=evaluation.asset_key, asset_partitions=[evaluation.partition]),
            limit=1,
        ).records[0]
        assert latest.run_id == result.run_id
        assert evaluation.target_materialization_data.storage_id == latest.storage_id

    with code_location(flights.instance) as ui:
        raw, features = check_statuses(ui, "raw"), check_statuses(ui, "features")
    all_days = [("SUCCEEDED", "2013-01-01", "2013-01-03")]
    assert raw == {name: all_days for name in ("completeness", "contract", "primary_key", "volume")}
    assert features == {"feature_schema": all_days, "no_label_leakage": all_days}

    # The upstream system re-delivers 01-02 with a text in a numeric column: the contract refuses it.
    path = flights.landing / "flights/2013-01-02.csv"
    frame = pl.read_csv(path, infer_schema=False)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("late")).otherwise("distance").alias("distance")
    ).write_csv(path)
    refused = flights.materialize(["raw"], partition="2013-01-02")
    assert not refused.success

    failed = [e for e in check_evaluations(refused) if not e.passed]
    assert [(e.check_name, e.partition) for e in failed] == [("contract", "2013-01-02")]
    assert "late" in failed[0].metadata["evidence"].value  # the evidence the failed day links to
    with code_location(flights.instance) as ui:
        raw = check_statuses(ui, "raw")
    assert raw["contract"] == [
        ("SUCCEEDED", "2013-01-01", "2013-01-01"),
        ("FAILED", "2013-01-02", "2013-01-02"),
        ("SUCCEEDED", "2013-01-03", "2013-01-03"),
    ]
