"""Dagster's embedded SQLite instance storage, tuned for the many small writes of a backfill.

Why: Dagster's SQLite event log opens a new SQLAlchemy engine and connection for every event; in
WAL mode the close of a database's last connection checkpoints the log and deletes it (fsyncs), and
every commit at SQLite's default ``synchronous=FULL`` fsyncs the log again. A year's backfill stores
thousands of events (materializations, per-partition check evaluations), so the platform spent most
of a backfill on this while the library work took a fraction of the time.

This storage keeps Dagster's schema, files and layout (``history/runs.db``, ``history/runs/*.db``,
``schedules/schedules.db`` under ``base_dir``; an instance written by one opens with the other) and
changes:

- one engine per database file for the life of the storage, instead of one per event, with its
  connections kept open (pooled) instead of closed after every event;
- every connection runs in WAL mode with ``synchronous=NORMAL``: a commit is appended to the
  write-ahead log without an fsync; the log is fsynced when it is checkpointed into the database;
- whether a table exists is asked once (Dagster asked on a new engine for every materialization);
- a new run's database is created and stamped with the schema's alembic revision read once per
  process (Dagster parsed its ~90 migration scripts twice for every run: 0.2-0.8 s per run);
- a run over a partition range records one planned event per asset instead of one per partition;
- an event is serialized once for every row that holds it, its index rows are one transaction, and
  the statements are built once (``_EventWrites``): Dagster serialized a check evaluation twice,
  a range's planned check once per partition, and built and cache-keyed a new SQLAlchemy statement
  for every row, which made most of a range run's per-event CPU time.

What that keeps and what it gives up: a process killed at any moment (SIGKILL, OOM, a crashed run
worker) loses nothing committed and never corrupts the database, because the WAL is written before
a commit returns and SQLite replays or discards it atomically on the next open. A power loss or an
OS crash can lose the last commits before the latest checkpoint (the database stays consistent,
those runs' last events are missing). For an instance whose losing a few event rows on power loss
is not acceptable, use the PostgreSQL instance (helm/dagster-values.yaml), as production does.

Named in dagster.yaml::

    storage:
      custom:
        module: mlplatform.orchestration.instance_storage
        class: TunedSqliteStorage
        config:
          base_dir: {env: DAGSTER_HOME}
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluation,
    AssetCheckEvaluationPlanned,
)
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecordStatus as Status,
)
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetKeyTable,
    SqlEventLogStorageMetadata,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import (
    LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION,
    SQLITE_BUSY_TIMEOUT_SECONDS,
)
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._time import datetime_from_timestamp
from dagster_shared import check
from sqlalchemy import and_, bindparam, event, inspect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, create_engine
from sqlalchemy.exc import DatabaseError

# WAL lets readers (the UI, sensors) read while a run writes; NORMAL skips the per-commit fsync.
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
# Another process creating the same database at the same moment (Dagster's own list): retry.
CONCURRENT_INIT = re.compile(
    r"table [A-Za-z_]* already exists|database is locked|UNIQUE constraint failed: alembic_version"
)
INIT_ATTEMPTS = 11
# The index, the runs database and the runs being written or read now (see _Engines).
MAX_OPEN_DATABASES = 8
# Built once: a statement whose values are bound at execution has one cache key, so SQLAlchemy
# compiles it once; Dagster's ``insert().values(**row)`` was built and cache-keyed for every row.
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
def event_log_scripts() -> ScriptDirectory:
    """Dagster's event-log migration scripts, parsed once per process (about 90 files)."""
    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


@functools.cache
def asset_upsert(columns: tuple[str, ...]) -> Any:
    """Insert an asset's row, or set ``columns`` on the existing one; built once per column set."""
    insert = sqlite_insert(AssetKeyTable)
    return insert.on_conflict_do_update(
        index_elements=[AssetKeyTable.c.asset_key], set_={c: insert.excluded[c] for c in columns}
    )


def _set_pragmas(connection: sqlite3.Connection, _record: Any) -> None:
    cursor = connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def tuned_engine(conn_string: str) -> Engine:
    """An engine whose pooled connections run in WAL mode with ``synchronous=NORMAL``.

    Pooled, unlike Dagster's NullPool: in WAL mode the close of a database's last connection
    checkpoints the log into the database and deletes it, with fsyncs, so a connection per event
    paid a checkpoint per event (most of the 19 ms). An open connection lets SQLite checkpoint
    every 1,000 pages instead. A killed process leaves the log behind; the next open replays it.
    """
    engine = create_engine(conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    event.listen(engine, "connect", _set_pragmas)
    return engine


def _insert_event(conn: Connection, row: dict[str, Any]) -> int:
    """Insert an event row; its storage id (what asset, tag and check rows refer to)."""
    key = conn.execute(EVENT_INSERT, row).inserted_primary_key
    if key is None or key[0] is None:
        raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
    return int(key[0])


class _Engines:
    """One engine per database file, made again in a forked child (pooled connections never cross
    a fork: two processes writing through one SQLite handle corrupt it).

    At most ``MAX_OPEN_DATABASES`` are kept, the least recently used closed first: every run has a
    database of its own, and a daemon or webserver that reads thousands of runs over weeks would
    otherwise keep a pooled connection (three file descriptors with WAL) open to each of them.
    """

    def __init__(self) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, conn_string: str) -> Engine:
        with self._lock:
            if self._pid != os.getpid():
                for engine in self._engines.values():
                    engine.dispose(close=False)
                self._engines, self._pid = OrderedDict(), os.getpid()
            if conn_string not in self._engines:
                self._engines[conn_string] = tuned_engine(conn_string)
                if len(self._engines) > MAX_OPEN_DATABASES:
                    # Closes the pooled connections; one still checked out by another thread
                    # stays usable and is closed when that thread is done with it.
                    self._engines.popitem(last=False)[1].dispose()
            self._engines.move_to_end(conn_string)
            return self._engines[conn_string]

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


class TunedSqliteEventLogStorage(SqliteEventLogStorage):
    """The event log (one database per run plus the cross-run index) on cached, tuned engines."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines = _Engines()
        self._tables: set[str] = set()
        self._asset_key_index_cols = False
        super().__init__(base_dir, inst_data=inst_data)

    @property
    def supports_partition_subset_in_asset_materialization_planned_events(self) -> bool:
        """A run over a partition range records one planned event per asset, not one per partition
        (365 fewer writes per asset for a year). Dagster's trade-off: a failed range run marks the
        run failed rather than each of its partitions. The instance says so for every process
        (webserver, daemon, run worker), where an environment variable would have to be set in each."""
        return True

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before every materialization's tags are written, on a new engine each time;
        a table present once stays (migrations add tables, never drop them)."""
        if table_name not in self._tables:
            engine = self._engines.get(self.conn_string_for_shard(INDEX_SHARD_NAME))
            with engine.connect() as conn:  # not _connect: its lock may be held by the caller
                if engine.dialect.has_table(conn, table_name):
                    self._tables.add(table_name)
        return table_name in self._tables

    def store_event(self, event: EventLogEntry) -> None:
        """Dagster's SQLite ``store_event`` (the run's row, then the index's mirror of asset, check
        and run-status events) with the event serialized once for all of its rows, the statements
        built once, and a check event's index rows (mirror, execution) in one transaction."""
        row = self._event_to_row(event)
        kind = event.dagster_event_type if event.is_dagster_event else None
        with self.run_connection(event.run_id) as conn:
            conn.execute(EVENT_INSERT, row)
        if kind in ASSET_EVENTS:
            with self.index_connection() as conn:
                event_id = _insert_event(conn, row)
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_entry(conn, event, event_id, row["event"])
        elif kind in ASSET_CHECK_EVENTS and event.run_id:
            with self.index_connection() as conn:
                event_id = _insert_event(conn, row)
                self._store_check_row(conn, event, event_id, row["event"])
        elif kind in ASSET_CHECK_EVENTS:  # a runless evaluation (reported from outside a run)
            with self.index_connection() as conn:
                event_id = _insert_event(conn, row)
            self.store_asset_check_event(event, event_id)
        elif kind in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            with self.index_connection() as conn:
                conn.execute(EVENT_INSERT, row)

    def _store_asset_entry(
        self, conn: Connection, event: EventLogEntry, event_id: int, serialized: str
    ) -> None:
        """Dagster's ``_store_asset_event`` (the asset's row: its last materialization as an event
        record, last run, last event time) as one upsert, the record written around the event
        already serialized: Dagster serialized a materialization a second time for it, then tried
        an insert that failed on the existing asset and updated instead, for every partition."""
        dagster_event = event.get_dagster_event()
        values: dict[str, Any] = {}
        if dagster_event.is_step_materialization:
            # serialize_value(EventLogRecord(storage_id, event)): its fields in their sorted order.
            record = f'{{"__class__": "EventLogRecord", "event_log_entry": {serialized}, "storage_id": {event_id}}}'
            values |= {"last_materialization": record, "last_run_id": event.run_id}
        elif dagster_event.is_asset_materialization_planned:
            values["last_run_id"] = event.run_id
        elif not dagster_event.is_asset_observation:
            return
        if self._has_asset_key_index_cols_on_connection(conn):
            values["last_materialization_timestamp"] = datetime_from_timestamp(event.timestamp)
        if values:
            asset_key = check.not_none(dagster_event.asset_key).to_string()
            conn.execute(asset_upsert(tuple(values)), {"asset_key": asset_key, **values})

    def _store_check_row(
        self, conn: Connection, event: EventLogEntry, event_id: int, serialized: str
    ) -> None:
        """A run's planned check (a row per partition of the run, the event serialized once) or its
        evaluation (completes the planned row of its partition; inserted when there is none), as
        Dagster's ``store_asset_check_event`` does."""
        data = event.get_dagster_event().event_specific_data
        assert isinstance(data, AssetCheckEvaluationPlanned | AssetCheckEvaluation)
        row = {
            "asset_key": data.asset_key.to_string(),
            "check_name": data.check_name,
            "run_id": event.run_id,
            "evaluation_event": serialized,
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
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

    def _has_asset_key_index_cols_on_connection(self, conn: Connection) -> bool:
        """Dagster reflects the asset table's columns for every materialization; a column, once
        added by a migration, stays."""
        if not self._asset_key_index_cols:
            self._asset_key_index_cols = super()._has_asset_key_index_cols_on_connection(conn)
        return self._asset_key_index_cols

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """Dagster's ``_initdb`` (create the tables and stamp the head revision when the database has
        none; never migrate) with the migration scripts parsed once per process: Dagster parsed them
        twice for every new run's database (to read the head revision, then to stamp it)."""
        scripts = event_log_scripts()
        for attempt in range(INIT_ATTEMPTS):
            try:
                with engine.connect() as connection:
                    context = MigrationContext.configure(connection)
                    if context.get_current_revision() is not None:
                        return
                    # An index created before Dagster stamped SQLite databases: Dagster's own rule.
                    old_index = for_index_shard and "event_logs" in inspect(connection).get_table_names()
                    SqlEventLogStorageMetadata.create_all(connection)
                    connection.exec_driver_sql("PRAGMA journal_mode=WAL")
                    context.stamp(
                        scripts, LAST_KNOWN_STAMPED_SQLITE_ALEMBIC_REVISION if old_index else "head"
                    )
                    connection.commit()
                return
            except (DatabaseError, sqlite3.DatabaseError) as exc:
                if attempt == INIT_ATTEMPTS - 1 or not CONCURRENT_INIT.search(str(exc)):
                    raise
                time.sleep(0.2)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(self.conn_string_for_shard(shard))
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def dispose(self) -> None:
        self._engines.dispose()
        super().dispose()


class TunedSqliteRunStorage(SqliteRunStorage):
    """Runs, tags and backfills on one cached, tuned engine."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines = _Engines()
        super().__init__(conn_string, inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engines.get(self._conn_string).connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self._engines.dispose()
        super().dispose()


class TunedSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (same files under ``base_dir``) with the tuned run and event storage."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = TunedSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = TunedSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # DagsterStorage: skip the default storages

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: dict[str, str]
    ) -> TunedSqliteStorage:
        os.makedirs(config_value["base_dir"], exist_ok=True)
        return cls(config_value["base_dir"], inst_data=inst_data)
