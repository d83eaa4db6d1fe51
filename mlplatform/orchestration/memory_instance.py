"""Dagster's in-memory instance with its two SQLite stores on pooled connections (the simulation's).

Why: Dagster's in-memory run and event storages keep their database alive with one held connection
and open a new SQLite connection (``NullPool``) for every read and write, then set two pragmas on
it. The simulation stores thousands of events per policy (every retraining is several runs), so
opening connections was a large share of a day's CPU. Here the same stores, schema and statements
run on a pool of connections to the same shared in-memory databases; a connection goes back to the
pool instead of being closed, and its pragma is set once, when it is opened (Dagster's per-call
``journal_mode=WAL`` does nothing on an in-memory database, which keeps its journal in memory).

Everything else is Dagster's ephemeral instance: the same instance class, run machinery, in-memory
schema, artifact storage, run launcher and coordinator (``dagster._core.instance.factory``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as db
from dagster._core.instance import InstanceType
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.run_coordinator import DefaultRunCoordinator
from dagster._core.storage.event_log import InMemoryEventLogStorage
from dagster._core.storage.noop_compute_log_manager import NoOpComputeLogManager
from dagster._core.storage.root import TemporaryLocalArtifactStorage
from dagster._core.storage.runs import InMemoryRunStorage
from sqlalchemy.pool import QueuePool

# Connections kept open per store: the simulation uses a store from one thread at a time; a
# second thread (a sensor's evaluation, a shutdown) gets its own while both are busy.
POOL_SIZE = 2


def _foreign_keys_on(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _pooled(engine: db.Engine) -> db.Engine:
    """An engine on ``engine``'s shared in-memory database whose connections are reused. The
    database lives as long as the store's held connection, so pooled connections may come and go."""
    pooled = db.create_engine(
        engine.url,
        poolclass=QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=-1,  # never wait for a connection: a nested use opens another
        connect_args={"check_same_thread": False},  # a connection may be returned by another thread
    )
    db.event.listen(pooled, "connect", _foreign_keys_on)
    return pooled


class PooledInMemoryEventLogStorage(InMemoryEventLogStorage):
    """Dagster's in-memory event log, its per-call connections taken from a pool."""

    def __init__(self) -> None:
        super().__init__()
        self._engine = _pooled(self._engine)

    @contextmanager
    def _connect(self) -> Iterator[db.Connection]:
        with self._db_lock, self._engine.connect() as conn, conn.begin():
            yield conn


class PooledInMemoryRunStorage(InMemoryRunStorage):
    """Dagster's in-memory run storage, its per-call connections taken from a pool."""

    def __init__(self) -> None:
        super().__init__()
        self._engine = _pooled(self._engine)

    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn


def in_memory_instance() -> dg.DagsterInstance:
    """What ``dg.DagsterInstance.ephemeral()`` returns, on the pooled stores."""
    return dg.DagsterInstance(
        instance_type=InstanceType.EPHEMERAL,
        local_artifact_storage=TemporaryLocalArtifactStorage(),
        run_storage=PooledInMemoryRunStorage(),
        event_storage=PooledInMemoryEventLogStorage(),
        compute_log_manager=NoOpComputeLogManager(),
        run_coordinator=DefaultRunCoordinator(),
        run_launcher=SyncInMemoryRunLauncher(),
    )
