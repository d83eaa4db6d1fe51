"""Dagster's instance storage and MLflow's tracking store and registry on a real PostgreSQL server.

The production configuration of both, on a server this test starts on 127.0.0.1: the real assets
ingest days and train and register a model; every run, event, tick, MLflow run and model version
is then read back from PostgreSQL itself, not only through the APIs that wrote it. The passwords
travel the way they do in a deployment: in environment variables, never in config or metadata.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

from mlplatform.core.pipelines import load_spec
from mlplatform.orchestration.resources import MlflowTracking
from mlplatform_tests.harness import Harness, failure_messages, small_window
from mlplatform_tests.storage.servers import Postgres

pytestmark = pytest.mark.integration

# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed; dagster-postgres
# brings psycopg2, so production URLs name it (Dagster's `scheme`, MLflow's URI) as here.
DRIVER = "postgresql+psycopg2"
FIRST, LAST, AS_OF = "2013-01-01", "2013-01-11", "2013-01-12"  # 7 train + 2 validation + 2 test days


def _rows(server: Postgres, database: str, query: str) -> list[tuple]:
    connection = server.connect(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()
    finally:
        connection.close()


def test_runs_events_ticks_and_the_model_registry_live_in_postgres(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres.create_database("dagster")
    postgres.create_database("mlflow")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", postgres.password)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres.url("mlflow", DRIVER))
    storage = {
        "postgres": {
            "postgres_db": {
                "scheme": DRIVER,
                "hostname": "127.0.0.1",
                "port": postgres.port,
                "username": postgres.user,
                "password": {"env": "DAGSTER_PG_PASSWORD"},
                "db_name": "dagster",
            }
        }
    }
    with dg.instance_for_test(overrides={"storage": storage}) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        tracking = MlflowTracking(artifact_root=str(tmp_path / "artifacts"))  # URI from the environment
        harness = Harness(
            small_window(load_spec("flight_delay"), 7, 2, 2), tmp_path, instance, tracking=tracking
        )
        harness.replay(FIRST, 11)

        results = [
            harness.materialize(harness.spec.static_references),
            harness.materialize(harness.spec.daily_tables, first=FIRST, last=LAST),
            harness.materialize(["model"], partition=AS_OF),
        ]
        for result in results:
            assert result.success, failure_messages(result)
        tick = instance.create_tick(
            TickData(
                instigator_origin_id="flight_delay-origin",
                instigator_name="flight_delay_nightly",
                instigator_type=InstigatorType.SCHEDULE,
                status=TickStatus.SUCCESS,
                timestamp=time.time(),
                selector_id="flight_delay_nightly",
                run_ids=[results[-1].run_id],
            )
        )
        stored_ticks = instance.get_ticks("flight_delay-origin", "flight_delay_nightly")
        version = harness.client().get_model_version("flight_delay", "1")

    assert [t.tick_id for t in stored_ticks] == [tick.tick_id]
    assert version.tags["as_of"] == AS_OF
    assert version.tags["dagster_run_id"] == results[-1].run_id
    runs = dict(_rows(postgres, "dagster", "SELECT run_id, status FROM runs"))
    assert runs == {r.run_id: "SUCCESS" for r in results}
    materialized = _rows(
        postgres,
        "dagster",
        "SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        'AND asset_key = \'["flight_delay", "model"]\'',
    )
    assert materialized == [(AS_OF,)]
    days = _rows(
        postgres,
        "dagster",
        "SELECT count(DISTINCT partition) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        'AND asset_key = \'["flight_delay", "features"]\'',
    )
    assert days == [(11,)]
    ticks = _rows(
        postgres, "dagster", "SELECT id, status FROM job_ticks WHERE selector_id = 'flight_delay_nightly'"
    )
    assert ticks == [(tick.tick_id, "SUCCESS")]
    assert _rows(postgres, "mlflow", "SELECT name, version FROM model_versions") == [("flight_delay", 1)]
    mlflow_runs = _rows(postgres, "mlflow", "SELECT run_uuid, status FROM runs")
    assert mlflow_runs == [(version.run_id, "FINISHED")]
    leaked = _rows(
        postgres,
        "dagster",
        f"SELECT (SELECT count(*) FROM event_logs WHERE event LIKE '%{postgres.password}%'), "
        f"(SELECT count(*) FROM runs WHERE run_body LIKE '%{postgres.password}%')",
    )
    assert leaked == [(0, 0)]  # in no stored event or run config, though every run connected with it
