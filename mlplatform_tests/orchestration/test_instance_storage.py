"""The tuned SQLite instance storage of dagster.yaml survives a run killed in the middle of its writes.

A real run in a child process, on the repository's dagster.yaml, stores events as fast as it can;
the test reads them from its own process while they are written, kills the child with SIGKILL
(no cleanup, no checkpoint), then opens the instance again: every database passes SQLite's
integrity check, keeps WAL mode, every event seen before the kill is still there, and the same
instance runs the next job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.orchestration.instance_storage import MAX_OPEN_DATABASES, TunedSqliteStorage

REPO = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import itertools
    import dagster as dg

    @dg.op
    def chatter(context):
        for n in itertools.count():
            context.log.info(f"event {n}")

    @dg.job
    def writer():
        chatter()

    with dg.DagsterInstance.get() as instance:
        writer.execute_in_process(instance=instance)
    """
)


@dg.op
def one() -> int:
    return 1


@dg.job
def after_the_kill() -> None:
    one()


def _events(instance: dg.DagsterInstance, run_id: str) -> int:
    return len(instance.all_logs(run_id))


def _wait_for_run(instance: dg.DagsterInstance, child: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.stderr.read() if child.stderr else child.returncode
        if runs := instance.get_runs():
            return runs[0].run_id
        time.sleep(0.1)
    raise AssertionError("the writer's run never appeared in the instance")


def _integrity(db: Path) -> tuple[str, str]:
    connection = sqlite3.connect(db)
    try:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        return check, mode
    finally:
        connection.close()


def test_a_run_killed_mid_write_leaves_a_readable_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = {**os.environ, "DAGSTER_HOME": str(home)}

    with dg.DagsterInstance.get() as instance:
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            run_id = _wait_for_run(instance, child)
            deadline = time.monotonic() + 60
            while (seen := _events(instance, run_id)) < 200:
                assert time.monotonic() < deadline and child.poll() is None, f"{seen} events in 60 s"
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            if child.stderr:
                child.stderr.close()
    assert child.returncode == -signal.SIGKILL

    databases = sorted(home.rglob("*.db"))
    assert {db.name for db in databases} >= {"runs.db", "index.db", f"{run_id}.db", "schedules.db"}
    for db in databases:
        assert _integrity(db) == ("ok", "wal"), db

    with dg.DagsterInstance.get() as instance:
        storage_data = instance.get_ref().storage_data
        assert storage_data is not None and storage_data.class_name == TunedSqliteStorage.__name__
        after = _events(instance, run_id)
        assert after >= seen
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # killed, not ended
        with instance.event_log_storage.index_connection() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        result = after_the_kill.execute_in_process(instance=instance)
        assert result.success
        assert _events(instance, result.run_id) > 0


@dg.asset(
    partitions_def=dg.DailyPartitionsDefinition("2013-01-01"),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def daily(context) -> None:  # type: ignore[no-untyped-def]  # Dagster reads the annotation as a string here
    context.log.info(f"{len(context.partition_keys)} days")


def test_a_range_run_records_one_planned_event_and_every_partitions_materialization(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)
    tags = {
        "dagster/asset_partition_range_start": "2013-01-01",
        "dagster/asset_partition_range_end": "2013-01-10",
    }
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([daily], instance=instance, tags=tags)
        planned = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        materialized = instance.get_materialized_partitions(daily.key)

    assert len(planned) == 1
    assert materialized == {f"2013-01-{d:02d}" for d in range(1, 11)}


def _schema(db: Path) -> tuple[list[tuple[str, str]], list[str], str]:
    with sqlite3.connect(db) as connection:
        tables = connection.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        stamped = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    return tables, stamped, journal


@pytest.mark.parametrize("new_index", [True, False], ids=["new-instance", "existing-index"])
def test_a_new_runs_database_is_the_one_dagster_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_index: bool
) -> None:
    """The tuned storage creates and stamps run and index databases itself (Dagster's migration
    scripts parsed once per process): the same tables, indexes, alembic revision and WAL mode as
    Dagster's own SQLite storage, so either class opens an instance the other wrote."""
    found = {}
    for name, yaml in [("dagster", ""), ("tuned", (REPO / "dagster.yaml").read_text())]:
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        if not new_index:  # the index exists before the storage opens it: stamped by _initdb in _connect
            with dg.DagsterInstance.get():
                pass
        with dg.DagsterInstance.get() as instance:
            run_id = after_the_kill.execute_in_process(instance=instance).run_id
        events = home / "history" / "runs"
        found[name] = (_schema(events / f"{run_id}.db"), _schema(events / "index.db"))
    assert found["tuned"] == found["dagster"]
    (run_tables, run_stamp, run_journal), _ = found["tuned"]
    assert len(run_tables) > 3 and len(run_stamp) == 1 and run_journal == "wal"


def _open_databases(folder: Path) -> set[str]:
    """The SQLite files below ``folder`` this process holds a descriptor to (db, -wal or -shm)."""
    names = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(folder)) and ".db" in target:
                names.add(Path(target).name.split(".db")[0])
    return names


def test_a_long_lived_process_keeps_a_bounded_number_of_databases_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon or webserver writes and reads many runs, each with its own database: the storage
    closes the least recently used instead of keeping a connection to every run ever seen."""
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    runs = 3 * MAX_OPEN_DATABASES
    with dg.DagsterInstance.get() as instance:
        run_ids = [after_the_kill.execute_in_process(instance=instance).run_id for _ in range(runs)]
        assert all(instance.all_logs(run_id) for run_id in run_ids)  # each run's events read back
        open_runs = set(run_ids) & _open_databases(tmp_path)

    assert open_runs  # the recent runs' connections are kept, as the speed needs
    assert len(open_runs) <= MAX_OPEN_DATABASES < runs
