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
- a run over a partition range records one planned event per asset instead of one per partition,
  and a step's per-partition materializations are stored as one batch (a transaction per database
  for the range instead of two per partition);
- an event is serialized once for every row that holds it, a check event's index rows are one
  transaction, and the statements are built once (``event_rows``): Dagster's redundant Python work
  per event was most of a range run's per-event CPU time once the fsyncs were gone.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import (
    SqlEventLogStorageMetadata,
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
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine, create_engine
from sqlalchemy.exc import DatabaseError

from mlplatform.orchestration.event_rows import insert_event, store_asset_entry, store_check_row

# WAL lets readers (the UI, sensors) read while a run writes; NORMAL skips the per-commit fsync.
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
# Another process creating the same database at the same moment (Dagster's own list): retry.
CONCURRENT_INIT = re.compile(
    r"table [A-Za-z_]* already exists|database is locked|UNIQUE constraint failed: alembic_version"
)
INIT_ATTEMPTS = 11
# The index, the runs database and the runs being written or read now (see _Engines).
MAX_OPEN_DATABASES = 8
# Dagster hands a step's per-partition materializations to ``store_event_batch`` only when this
# variable is above 0 (it flushes at a batch's end or when this many are buffered).
EVENT_BATCH_VARIABLE = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000
# The events whose rows the index mirrors (the rest live only in their run's database).
INDEXED = ASSET_EVENTS | ASSET_CHECK_EVENTS | set(EVENT_TYPE_TO_PIPELINE_RUN_STATUS)


@functools.cache
def event_log_scripts() -> ScriptDirectory:
    """Dagster's event-log migration scripts, parsed once per process (about 90 files)."""
    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


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
        """Also turns Dagster's event batching on for this process unless ``DAGSTER_EVENT_BATCH_SIZE``
        says otherwise: Dagster reads only that variable, and every process that executes runs (the
        run worker, a multiprocess run's step processes, ``execute_in_process``, the daemon) builds
        this storage from dagster.yaml before it stores an event, so the instance turns it on where
        a variable set by hand would have to be set in each process (and would be missed in one)."""
        os.environ.setdefault(EVENT_BATCH_VARIABLE, str(EVENT_BATCH_SIZE))
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
        self._store_events([event])

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The rows ``store_event`` writes for each event, in the same order, with one transaction
        per database for the whole batch instead of two per event (Dagster's default is a loop over
        ``store_event``). Dagster hands over a step's per-partition materializations and a run's
        planned events as one batch (``EVENT_BATCH_SIZE``): 365 of them for a year's range."""
        self._store_events(events)

    def _store_events(self, events: Sequence[EventLogEntry]) -> None:
        rows = [self._event_to_row(entry) for entry in events]
        for run_id in dict.fromkeys(entry.run_id for entry in events):
            with self.run_connection(run_id) as conn:
                for entry, row in zip(events, rows, strict=True):
                    if entry.run_id == run_id:
                        insert_event(conn, row)
        kinds = [entry.dagster_event_type if entry.is_dagster_event else None for entry in events]
        if not INDEXED.intersection(kinds):
            return
        runless = []
        with self.index_connection() as conn:
            for entry, row, kind in zip(events, rows, kinds, strict=True):
                if kind in ASSET_EVENTS:
                    event_id = insert_event(conn, row)
                    self._store_asset_event_tags(conn, [entry], [event_id])
                    index_cols = self._has_asset_key_index_cols_on_connection(conn)
                    store_asset_entry(conn, entry, event_id, row["event"], index_cols)
                elif kind in ASSET_CHECK_EVENTS and entry.run_id:
                    store_check_row(conn, entry, insert_event(conn, row), row["event"], row["timestamp"])
                elif kind in ASSET_CHECK_EVENTS:  # a runless evaluation (reported from outside a run)
                    runless.append((entry, insert_event(conn, row)))
                elif kind in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
                    insert_event(conn, row)
        for entry, event_id in runless:  # its own transaction, after the mirror's, as in Dagster
            self.store_asset_check_event(entry, event_id)

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
