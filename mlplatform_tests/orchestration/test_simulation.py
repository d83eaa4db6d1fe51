"""``mlplatform simulate`` on a few real days: each policy serves every flight, decides as designed,
and the report says what each cost."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from pathlib import Path

import dagster as dg
import mlflow
import pytest

from mlplatform.core.data.replay import replay
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.simulation import (
    BACKGROUND_NICENESS,
    PolicyRun,
    _raise_niceness,
    niceness,
    simulate,
)
from mlplatform.orchestration.simulation_data import (
    INGESTED,
    RANGE_START,
    days_between,
    ingest_days,
    mark_ingested,
    simulation_spec,
    wait_for_ingestion,
)

START, DAYS = dt.date(2013, 1, 21), 4


@pytest.mark.integration
def test_simulation_runs_each_policy_through_the_loop_and_reports(tmp_path: Path) -> None:
    """Two policies in parallel, with one day ingested before they start and the other three beside
    them: every policy still serves and measures every day."""
    out = tmp_path / "simulation"
    report = simulate("flight_delay", START, DAYS, ["static", "daily"], out, parallel=2, head_days=1)

    results = json.loads((out / "results.json").read_text())
    static, daily = results["static"], results["daily"]
    days = [(START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    assert static["days"] == daily["days"] == days
    # Every flight of every day was answered and logged, by either policy.
    assert static["served"] == daily["served"] and min(static["served"]) > 800
    assert all(0.5 < auc < 0.95 for auc in static["live"] + daily["live"])
    # The first day is served by the same bootstrap champion under both policies.
    assert static["metric"] == daily["metric"] == "auc"
    assert static["live"][0] == pytest.approx(daily["live"][0])
    assert static["retrainings"] == 0 and daily["retrainings"] == DAYS
    assert daily["triggers"] == {"schedule": DAYS}
    registry = f"sqlite:///{out / 'daily' / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(registry, registry)
    as_of = sorted(v.tags["as_of"] for v in client.search_model_versions("name = 'flight_delay'"))
    assert as_of == [
        START.isoformat(),
        *[(START + dt.timedelta(days=n)).isoformat() for n in range(1, DAYS + 1)],
    ]

    text = report.read_text()
    assert "| static | 4 |" in text and "| daily | 4 |" in text
    assert f"through {START.isoformat()}; the rest beside them" in text
    assert json.loads((out / "data" / INGESTED).read_text()) == {"blocked": [], "error": None}
    assert (out / "live_metric.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("pipeline", "start", "requests"), [("flight_delay", START, 200), ("room_rate", dt.date(2016, 9, 1), 100)]
)
def test_the_simulated_rollout_is_a_shadow_stage_without_a_latency_limit(
    pipeline: str, start: dt.date, requests: int
) -> None:
    """At most 200 shadow requests (the spec's own minimum when smaller) and no p99 limit: the
    simulated service shares the simulating machine, so its latencies would decide rollbacks by the
    machine's load. The spec reaches the policies' processes as JSON, limit included."""
    spec = simulation_spec(load_spec(pipeline), start)
    shadow = spec.rollout.shadow
    assert spec.rollout.strategy == "shadow"
    assert (shadow.min_requests, shadow.min_minutes) == (requests, 0)
    assert (
        shadow.max_p99_ms >= 1e9
        and shadow.max_error_rate == load_spec(pipeline).rollout.shadow.max_error_rate
    )
    assert PipelineSpec.model_validate_json(spec.model_dump_json(by_alias=True)) == spec


def test_a_day_blocked_at_ingestion_is_served_nothing_and_measured_as_missing(tmp_path: Path) -> None:
    """A day whose delivery the gates blocked (the source has no weather on 2013-12-31) is stored in
    no table: the simulated day goes on with nothing to serve and no live metric, as in production."""
    spec = simulation_spec(load_spec("flight_delay"), START)
    run = PolicyRun(spec, "static", tmp_path / "data", tmp_path / "home")
    run.arrive("2013-12-31", run.morning_tables())

    run.serve("2013-12-31")

    live, served = run.live_metric("2013-12-31")
    assert served == 0 and live != live  # NaN: not measured


@pytest.mark.integration
def test_blocked_days_are_named_by_the_failed_run_and_the_rest_ingested_around_them(tmp_path: Path) -> None:
    """A delivery the contract refuses in the middle of the range and one on its last day: the
    whole-range run fails and its check evaluations name both, the two stretches between them are
    ingested in one run each (three ranged runs, not a halving search), and every other day is stored
    in every daily table."""
    spec = load_spec("flight_delay")
    days = days_between(START, 6)
    landing = tmp_path / "landing" / spec.name
    replay(spec, landing, START, len(days))
    refused = [days[2], days[-1]]
    for day in refused:
        (landing / spec.source.path.format(day=day)).write_text("not a delivery\n")

    with dg.DagsterInstance.ephemeral() as instance:
        blocked = ingest_days(spec, tmp_path, days, instance)
        ranged = [r for r in instance.get_runs() if RANGE_START in r.tags]

    assert blocked == refused
    assert sorted(r.tags[RANGE_START] for r in ranged) == [days[0], days[0], days[3]]
    store = ParquetWarehouse(str(tmp_path / "warehouse"))
    for table in spec.daily_tables:
        assert store.days(spec.name, table) == [d for d in days if d not in refused], table


@pytest.mark.parametrize(
    ("policies", "foreground"),
    [
        (["static", "weekly", "daily", "triggered"], "daily"),
        (["weekly", "triggered"], "triggered"),
        (["static", "weekly"], "weekly"),
        (["static"], "static"),
    ],
)
def test_in_parallel_only_the_policy_with_the_most_work_keeps_its_priority(policies, foreground) -> None:
    assert niceness(policies) == {p: 0 if p == foreground else BACKGROUND_NICENESS for p in policies}


def _niceness_after(values: list[int]) -> int:
    for value in values:
        _raise_niceness(value)
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_a_worker_s_niceness_is_raised_and_never_lowered() -> None:
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_niceness_after, ([base + 3],)) == base + 3
        assert pool.apply(_niceness_after, ([base + 3, base + 1, base],)) == base + 3


def test_a_policy_waits_for_the_rest_of_the_data_and_learns_why_it_failed(tmp_path: Path) -> None:
    mark_ingested(tmp_path, ["2013-12-31"])
    wait_for_ingestion(tmp_path, os.getppid())  # returns at once: marked

    mark_ingested(tmp_path, [], "RuntimeError: the static reference tables failed their gates")
    with pytest.raises(RuntimeError, match="ingesting the simulated days failed: RuntimeError: the static"):
        wait_for_ingestion(tmp_path, os.getppid())


def test_a_policy_stops_waiting_when_the_simulating_process_is_gone(tmp_path: Path) -> None:
    """No marker, and the parent it was started by is not its parent any more (it died: the
    worker was re-parented), so it raises instead of waiting for ever."""
    with pytest.raises(RuntimeError, match="ended before the data was ingested"):
        wait_for_ingestion(tmp_path, parent=os.getppid() + 1)
