"""The simulation's in-memory instance: Dagster's in-memory stores on reused connections."""

import dagster as dg
import sqlalchemy as db

from mlplatform.orchestration.memory_instance import POOL_SIZE, in_memory_instance

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-06")


@dg.asset(partitions_def=DAYS)
def numbers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"day": context.partition_key})


@dg.asset_check(asset=numbers, blocking=True)
def numbers_are_fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _record(instance: dg.DagsterInstance) -> tuple:
    """What a user reads back: runs and their status, the event types in order, the asset's
    materialized partitions and its check's evaluations."""
    runs = instance.get_runs()
    events = [
        [entry.dagster_event_type for entry in instance.all_logs(run.run_id) if entry.is_dagster_event]
        for run in reversed(runs)
    ]
    partitions = instance.get_materialized_partitions(numbers.key)
    checks = instance.event_log_storage.get_asset_check_execution_history(
        numbers_are_fine.check_key, limit=10
    )
    return [r.status for r in runs], events, partitions, [c.status for c in checks]


def _materialize_days(instance: dg.DagsterInstance) -> None:
    for day in DAYS.get_partition_keys():
        assert dg.materialize([numbers, numbers_are_fine], instance=instance, partition_key=day).success


def test_it_records_what_dagsters_ephemeral_instance_records():
    with dg.DagsterInstance.ephemeral() as dagsters, in_memory_instance() as ours:
        _materialize_days(dagsters)
        _materialize_days(ours)
        expected = _record(dagsters)
        assert expected[2] == set(DAYS.get_partition_keys())  # the comparison compares something
        assert _record(ours) == expected


def test_its_stores_reuse_their_connections():
    opened = {"events": 0, "runs": 0}
    with in_memory_instance() as instance:
        for name, engine in (
            ("events", instance.event_log_storage._engine),  # type: ignore[attr-defined]
            ("runs", instance.run_storage._engine),  # type: ignore[attr-defined]
        ):
            db.event.listen(
                engine, "connect", lambda *_, name=name: opened.__setitem__(name, opened[name] + 1)
            )
        _materialize_days(instance)
        assert len(instance.get_runs()) == len(DAYS.get_partition_keys())
    # Dagster's in-memory stores open a connection per read and write: hundreds for these runs.
    assert 0 < opened["events"] <= POOL_SIZE and 0 < opened["runs"] <= POOL_SIZE, opened
