"""``extra_columns: ignore`` end to end: days delivered with and without an undeclared column.

An upstream starts sending a column the spec does not declare; the table says to keep it. The
days before have no such column, the days after have it, and everything that reads several days
at once (training, the evaluation's slices from ``raw``, the SQL views) must read both kinds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl

from mlplatform.core.data.sql import connect
from mlplatform_tests import machines
from mlplatform_tests.harness import Harness, failure_messages

DAYS, AS_OF, FIRST_WITH_EXTRA = 11, "2024-03-11", "2024-03-10"


def test_days_with_and_without_an_ignored_extra_column_are_read_together(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    spec = machines.machine_spec(
        "machine_extra",
        "regression",
        {"name": "downtime", "expr": "downtime_minutes", "when_null": "drop"},
        gates={"slice_columns": ["plant"], "slice_gaps": {"mae": 60.0}, "min_slice_rows": 50},
    )
    schema = spec.schema_.model_copy(update={"extra_columns": "ignore"})
    harness = Harness(spec.model_copy(update={"schema_": schema}), tmp_path, instance)
    machines.write_landing(harness.landing, DAYS, seed=7)
    for path in sorted((harness.landing / "readings").iterdir()):
        if path.stem >= FIRST_WITH_EXTRA:  # the upstream added the operator's badge number
            readings = pl.read_parquet(path)
            readings.with_columns(operator=pl.int_range(readings.height) % 7).write_parquet(path)
    last = (machines.START + dt.timedelta(days=DAYS - 1)).isoformat()

    for result in (
        harness.materialize(["machines"]),
        harness.materialize(["raw", "features"], first=machines.START.isoformat(), last=last),
        # The test days (03-09, 03-10) straddle the change: the slices read both from raw.
        harness.materialize(["model", "evaluation"], partition=AS_OF),
    ):
        assert result.success, failure_messages(result)

    store = harness.store
    days = [(machines.START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    raw = store.read_days("machine_extra", "raw", days)
    assert raw.height == DAYS * machines.READINGS_PER_DAY
    assert raw.schema["operator"] == pl.String  # stored as text, unchecked
    with_extra = raw.filter(pl.col("reading_date") >= dt.date.fromisoformat(FIRST_WITH_EXTRA))
    assert with_extra["operator"].null_count() == 0
    assert raw["operator"].null_count() == raw.height - with_extra.height
    assert "operator" not in store.read_days("machine_extra", "features", days).columns

    connection, _ = connect(store)
    counted = connection.execute(
        "SELECT count(*), count(operator), count(DISTINCT day) FROM machine_extra_raw"
    ).fetchone()
    assert counted == (raw.height, with_extra.height, DAYS)
