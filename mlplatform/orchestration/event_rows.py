"""The rows Dagster's SQL event log keeps for an event, written with each event serialized once.

Why: in a range run nearly every event is a per-partition materialization or check evaluation, and
Dagster's SQLite event log spent most of its time per event on redundant Python work: it serialized
a check evaluation twice (its event row, then the check's execution row), a range's planned check
once per partition of the range, a materialization a second time for the asset's row (then tried
an insert that failed on the existing asset before updating), and built a new SQLAlchemy statement
with its values for every row (SQLAlchemy then computed a cache key over every value).

Here the statements are built once and their values bound at execution (one cache key, compiled
once), and the callers pass the event's JSON from its event row. The rows are Dagster's own, column
for column (``TunedSqliteEventLogStorage.store_event`` calls these; a test compares every asset and
check table with what Dagster's storage writes for the same runs).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationPlanned,
)
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as Status,
)
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetKeyTable,
    SqlEventLogStorageTable,
)
from dagster._time import datetime_from_timestamp
from dagster_shared import check
from sqlalchemy import and_, bindparam
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

EVENT_INSERT = SqlEventLogStorageTable.insert()
CHECK_INSERT = AssetCheckExecutionsTable.insert()
_CHECK = AssetCheckExecutionsTable.c
_CHECK_ROW = and_(
    _CHECK.asset_key == bindparam("b_asset_key"),
    _CHECK.check_name == bindparam("b_check_name"),
    _CHECK.run_id == bindparam("b_run_id"),
)
_CHECK_RESULT: dict[str, Any] = {
    c: bindparam(f"b_{c}")
    for c in ("execution_status", "evaluation_event", "evaluation_event_timestamp",
              "evaluation_event_storage_id", "materialization_event_storage_id")
}  # fmt: skip
# The planned row a run's evaluation completes: (asset, check, run, partition or none).
CHECK_UPDATE = {
    partitioned: AssetCheckExecutionsTable.update()
    .where(
        _CHECK_ROW,
        _CHECK.partition == bindparam("b_partition") if partitioned else _CHECK.partition.is_(None),
    )
    .values(_CHECK_RESULT)
    for partitioned in (True, False)
}


@functools.cache
def asset_upsert(columns: tuple[str, ...]) -> Any:
    """Insert an asset's row, or set ``columns`` on the existing one; built once per column set."""
    insert = sqlite_insert(AssetKeyTable)
    return insert.on_conflict_do_update(
        index_elements=[AssetKeyTable.c.asset_key], set_={c: insert.excluded[c] for c in columns}
    )


def insert_event(conn: Connection, row: dict[str, Any]) -> int:
    """Insert an event row (Dagster's ``_event_to_row``); its storage id, which asset, tag and
    check rows refer to."""
    key = conn.execute(EVENT_INSERT, row).inserted_primary_key
    if key is None or key[0] is None:
        raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
    return int(key[0])


def store_asset_entry(
    conn: Connection, event: EventLogEntry, event_id: int, serialized: str, index_cols: bool
) -> None:
    """Dagster's ``_store_asset_event`` (the asset's row: its last materialization as an event
    record, last run, last event time when the schema has ``index_cols``) as one upsert, the record
    written around the event's JSON instead of serializing the event again."""
    dagster_event = event.get_dagster_event()
    values: dict[str, Any] = {}
    if dagster_event.is_step_materialization:
        # serialize_value(EventLogRecord(storage_id, event)): its fields in their sorted order.
        record = (
            f'{{"__class__": "EventLogRecord", "event_log_entry": {serialized}, "storage_id": {event_id}}}'
        )
        values |= {"last_materialization": record, "last_run_id": event.run_id}
    elif dagster_event.is_asset_materialization_planned:
        values["last_run_id"] = event.run_id
    elif not dagster_event.is_asset_observation:
        return
    if index_cols:
        values["last_materialization_timestamp"] = datetime_from_timestamp(event.timestamp)
    if values:
        asset_key = check.not_none(dagster_event.asset_key).to_string()
        conn.execute(asset_upsert(tuple(values)), {"asset_key": asset_key, **values})


def store_check_row(
    conn: Connection, event: EventLogEntry, event_id: int, serialized: str, timestamp: dt.datetime
) -> None:
    """A run's planned check (a row per partition of the run, all with the one JSON) or its
    evaluation (completes the planned row of its partition; inserted when there is none), as
    Dagster's ``store_asset_check_event`` does for a run's events; ``timestamp`` as in the event row."""
    data = event.get_dagster_event().event_specific_data
    assert isinstance(data, AssetCheckEvaluationPlanned | AssetCheckEvaluation)
    row = {
        "asset_key": data.asset_key.to_string(),
        "check_name": data.check_name,
        "run_id": event.run_id,
        "evaluation_event": serialized,
        "evaluation_event_timestamp": timestamp,
        "evaluation_event_storage_id": event_id,
    }
    if isinstance(data, AssetCheckEvaluationPlanned):
        row["execution_status"] = Status.PLANNED.value
        subset = data.partitions_subset
        partitions = subset.get_partition_keys() if subset else [None]
        conn.execute(CHECK_INSERT, [{**row, "partition": p} for p in partitions])
        return
    target = data.target_materialization_data
    row |= {
        "execution_status": (Status.SUCCEEDED if data.passed else Status.FAILED).value,
        "materialization_event_storage_id": target.storage_id if target else None,
        "partition": data.partition,
    }
    bound = {f"b_{name}": value for name, value in row.items()}
    updated = conn.execute(CHECK_UPDATE[data.partition is not None], bound).rowcount
    if updated == 0:  # no planned row (Dagster: runs of external step launchers)
        conn.execute(CHECK_INSERT, row)
    elif updated > 1:
        raise DagsterInvariantViolationError(
            f"Updated {updated} rows for asset check evaluation {data.asset_check_key} "
            "as a result of duplicate AssetCheckPlanned events."
        )
