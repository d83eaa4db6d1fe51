"""The tuned SQLite instance storage of dagster.yaml survives a run killed in the middle of its writes.

A real run in a child process, on the repository's dagster.yaml, stores events as fast as it can;
the test reads them from its own process while they are written, kills the child with SIGKILL
(no cleanup, no checkpoint), then opens the instance again: every database passes SQLite's
integrity check, keeps WAL mode, every event seen before the kill is still there, and the same
instance runs the next job.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from mlplatform.core.gate_result import GateResult
from mlplatform.orchestration.checks import stored_evaluations
from mlplatform.orchestration.instance_storage import (
    EVENT_BATCH_VARIABLE,
    MAX_OPEN_DATABASES,
    TunedSqliteEventLogStorage,
    TunedSqliteStorage,
)

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


def _dagster_and_tuned_homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A home with Dagster's own SQLite storage, then one with the repository's dagster.yaml (the
    tuned storage), each made DAGSTER_HOME in turn, so a test runs the same thing on both."""
    for name, yaml in [("dagster", ""), ("tuned", (REPO / "dagster.yaml").read_text())]:
        home = tmp_path / name
        home.mkdir()
        (home / "dagster.yaml").write_text(yaml)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        yield name, home


@pytest.mark.parametrize("new_index", [True, False], ids=["new-instance", "existing-index"])
def test_a_new_runs_database_is_the_one_dagster_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_index: bool
) -> None:
    """The tuned storage creates and stamps run and index databases itself (Dagster's migration
    scripts parsed once per process): the same tables, indexes, alembic revision and WAL mode as
    Dagster's own SQLite storage, so either class opens an instance the other wrote."""
    found = {}
    for name, home in _dagster_and_tuned_homes(tmp_path, monkeypatch):
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


DAYS = dg.DailyPartitionsDefinition("2013-01-01")


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(name, asset="gated", partitions_def=DAYS, blocking=True)
        for name in ("rows", "late")
    ],
)
def gated(context):  # type: ignore[no-untyped-def]  # as ``daily``
    """The platform's range-run shape (``checks.stored_evaluations``): one materialization for the
    range (Dagster records one per partition), then every partition's evaluations targeting it;
    the warning gate fails on the last day."""
    days = list(context.partition_keys)
    yield dg.MaterializeResult(metadata={"days": len(days)})
    gates = {
        day: [
            GateResult("rows", True, f"rows {day}", figures={"day": day}),
            GateResult("late", day != days[-1], f"late {day}", "warn", figures={"day": day}),
        ]
        for day in days
    }
    yield from stored_evaluations(context, context.assets_def.key, gates)


@dg.asset(check_specs=[dg.AssetCheckSpec("whole", asset="whole_table")])
def whole_table() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=True)])


def _target(event: dg.EventLogEntry | None) -> bool:
    """Whether an evaluation targets a materialization (the UI shows it against that partition's)."""
    assert event is not None
    return event.get_dagster_event().asset_check_evaluation_data.target_materialization_data is not None


# What differs between two runs of the same job: a data version (hashed with the run id), a
# duration, a log file's key, a process id, timestamps.
DATA_VERSION, DURATION = re.compile(r"[0-9a-f]{64}"), re.compile(r"\b[0-9.]+m?s\b")
DROPPED = {"pid", "log_key", "duration_ms"}


def _rows(db: Path, table: str, run_ids: list[str]) -> list[tuple]:
    """Every row of ``table`` (events as JSON) with ids and what differs between runs taken out;
    the runs named by their order."""
    names = {run_id: f"run{n}" for n, run_id in enumerate(run_ids)}

    def same(value: object) -> object:
        if isinstance(value, str) and value.startswith("{"):
            return same(json.loads(value))
        if isinstance(value, dict):
            return {k: same(v) for k, v in value.items() if "timestamp" not in k and k not in DROPPED}
        if isinstance(value, list):
            return [same(v) for v in value]
        if isinstance(value, str):
            value = "data version" if DATA_VERSION.fullmatch(value) else names.get(value, value)
            return DURATION.sub("duration", value)
        return value

    with contextlib.closing(sqlite3.connect(db)) as connection:
        cursor = connection.execute(f"SELECT * FROM {table} ORDER BY id")
        columns = [c[0] for c in cursor.description]
        keep = [n for n, c in enumerate(columns) if "timestamp" not in c and c != "id"]
        return [tuple(same(row[n]) for n in keep) for row in cursor]


def _partition_status(instance: dg.DagsterInstance, key: dg.AssetKey, runs: list[str]) -> dict[str, object]:
    """What the UI shows of a partitioned asset: its partitions' status (the status cache the
    asset's page reads) and its latest materialization (partition, the run's place in ``runs``)."""
    cached = get_and_update_asset_status_cache_value(instance, key, DAYS)
    assert cached is not None
    latest = instance.get_latest_materialization_event(key)
    assert latest is not None and latest.dagster_event is not None
    return {
        "materialized": sorted(cached.deserialize_materialized_partition_subsets(DAYS).get_partition_keys()),
        "failed": sorted(cached.deserialize_failed_partition_subsets(DAYS).get_partition_keys()),
        "in progress": sorted(cached.deserialize_in_progress_partition_subsets(DAYS).get_partition_keys()),
        "latest": (latest.dagster_event.partition, runs.index(latest.run_id)),
    }


def test_the_tuned_event_writes_store_what_dagsters_own_storage_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tuned storage writes events itself (each serialized once, statements built once, a
    range's materializations as one batch): after the same runs (a range with per-partition checks,
    one failing; an unpartitioned check; a check reported outside a run) every table Dagster keeps
    about assets and checks holds the same rows as under Dagster's own SQLite storage (one event at
    a time), and the instance reports the same check results, partition statuses and latest
    materialization."""
    # Dagster's storage records a range's planned events the tuned way too (else ids shift).
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    monkeypatch.delenv(EVENT_BATCH_VARIABLE, raising=False)  # Dagster's side: no batches
    batches: list[list[str]] = []

    def recorded(storage: TunedSqliteEventLogStorage, events: list[dg.EventLogEntry]) -> None:
        batches.append([event.dagster_event_type.value for event in events if event.dagster_event_type])
        store_event_batch(storage, events)

    store_event_batch = TunedSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(TunedSqliteEventLogStorage, "store_event_batch", recorded)
    found = {}
    for name, home in _dagster_and_tuned_homes(tmp_path, monkeypatch):
        with dg.DagsterInstance.get() as instance:  # the tuned storage turns batches on
            assert (os.environ.get(EVENT_BATCH_VARIABLE) is None) == (name == "dagster")
            runs = [
                dg.materialize([gated], instance=instance, tags={
                    "dagster/asset_partition_range_start": "2013-01-01",
                    "dagster/asset_partition_range_end": "2013-01-04"}).run_id,
                dg.materialize([whole_table], instance=instance).run_id,
            ]  # fmt: skip
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(asset_key=whole_table.key, check_name="whole", passed=False)
            )
            statuses = {
                check: [
                    (r.partition, r.status.value, _target(r.event))
                    for r in instance.event_log_storage.get_asset_check_execution_history(
                        dg.AssetCheckKey(key, check), limit=10
                    )
                ]
                for key, check in [(gated.key, "rows"), (gated.key, "late"), (whole_table.key, "whole")]
            }
            status = _partition_status(instance, gated.key, runs)
        events = home / "history" / "runs"
        tables = ["event_logs", "asset_keys", "asset_event_tags", "asset_check_executions"]
        found[name] = {
            "index": {t: _rows(events / "index.db", t, runs) for t in tables},
            "runs": [_rows(events / f"{run_id}.db", "event_logs", runs) for run_id in runs],
            "statuses": statuses,
            "status": status,
        }
    assert found["tuned"] == found["dagster"]
    planned = ["ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED"]
    # The range run's planned events, its materializations (stored at once), the other run's planned.
    assert batches == [[*planned, planned[1]], ["ASSET_MATERIALIZATION"] * 4, planned], batches
    days = ["2013-01-01", "2013-01-02", "2013-01-03", "2013-01-04"]
    assert found["tuned"]["status"] == {
        "materialized": days, "failed": [], "in progress": [], "latest": ("2013-01-04", 0)
    }  # fmt: skip
    checks = found["tuned"]["statuses"]
    assert [s[:2] for s in checks["late"]] == [
        ("2013-01-04", "FAILED"), ("2013-01-03", "SUCCEEDED"), ("2013-01-02", "SUCCEEDED"), ("2013-01-01", "SUCCEEDED")
    ]  # fmt: skip
    assert all(target for _, _, target in checks["rows"]) and len(checks["rows"]) == 4
    assert [s[:2] for s in checks["whole"]] == [(None, "FAILED"), (None, "SUCCEEDED")]
