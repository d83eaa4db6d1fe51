"""A backfill of ``model`` over a date range: one run and one registered version per as-of day."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import mlflow

from mlplatform.orchestration.bootstrap import backfill_models
from mlplatform_tests.harness import Harness, failure_messages


def test_model_backfill_registers_one_version_per_day_and_moves_aliases_only_through_the_gates(
    flights: Harness,
) -> None:
    flights.replay("2013-01-01", 24)
    assert flights.materialize(flights.spec.static_references).success
    data = flights.materialize(flights.spec.daily_tables, first="2013-01-01", last="2013-01-24")
    assert data.success, failure_messages(data)
    definitions = flights.definitions

    failed = backfill_models(
        definitions, flights.instance, "flight_delay", dt.date(2013, 1, 21), dt.date(2013, 1, 23), gated=False
    )
    client = flights.client()
    versions = sorted(client.search_model_versions("name = 'flight_delay'"), key=lambda v: int(v.version))
    assert failed == []
    assert [v.tags["as_of"] for v in versions] == ["2013-01-21", "2013-01-22", "2013-01-23"]
    assert client.get_registered_model("flight_delay").aliases == {}
    runs = flights.instance.get_runs(dg.RunsFilter(tags={"mlplatform/trigger": "backfill"}))
    assert sorted(r.tags["dagster/partition"] for r in runs) == ["2013-01-21", "2013-01-22", "2013-01-23"]
    data_versions = mlflow.artifacts.load_dict(f"runs:/{versions[-1].run_id}/data_versions.json")
    window = flights.spec.model.window_days
    assert len(data_versions) == window and "features/day=2013-01-22" in data_versions

    gated = backfill_models(
        definitions, flights.instance, "flight_delay", dt.date(2013, 1, 24), dt.date(2013, 1, 25), gated=True
    )
    for version in client.search_model_versions("name = 'flight_delay'"):
        if version.tags["as_of"] < "2013-01-24":
            continue
        approved = version.tags.get("decision") == "approved"
        assert (version.tags["as_of"] in gated) != approved
        assert bool(version.aliases) == approved
