"""Per-day row counts in a single-run range: each day gets its own, up to a year's range."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from mlplatform.orchestration.metadata import DAY_ROW_COUNTS_UP_TO, add_day_row_counts

DAYS = dg.DailyPartitionsDefinition("2013-01-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def counted(context):  # type: ignore[no-untyped-def]  # Dagster reads the annotation as a string here
    """A day's "rows" is its day of the month, so neighbouring days differ."""
    rows = {day: int(day[-2:]) for day in context.partition_keys}
    add_day_row_counts(context, context.assets_def.key, rows)
    return dg.MaterializeResult(metadata={"range_rows": sum(rows.values())})


def _counts(days: int) -> dict[str | None, object]:
    last = (dt.date(2013, 1, 1) + dt.timedelta(days=days - 1)).isoformat()
    tags = {"dagster/asset_partition_range_start": "2013-01-01", "dagster/asset_partition_range_end": last}
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([counted], instance=instance, tags=tags)
    events = result.get_asset_materialization_events()
    assert len(events) == days
    return {
        e.materialization.partition: getattr(
            e.materialization.metadata.get("dagster/row_count"), "value", None
        )
        for e in events
    }


def test_each_day_of_a_range_counts_its_own_rows() -> None:
    assert _counts(3) == {"2013-01-01": 1, "2013-01-02": 2, "2013-01-03": 3}


def test_a_range_longer_than_a_year_leaves_the_days_counts_out() -> None:
    counts = _counts(DAY_ROW_COUNTS_UP_TO + 1)
    assert set(counts.values()) == {None}
