from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.core.pipelines import load_spec
from mlplatform_tests.harness import Harness, small_window

TRAIN_AS_OF = "2013-01-21"  # the small window (14 + 3 + 3 days) ends the day before


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test touches the developer's .mlplatform or a real MLflow server by accident."""
    home = tmp_path / "home"
    monkeypatch.setenv("MLPLATFORM_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLPLATFORM_WAREHOUSE", raising=False)
    monkeypatch.delenv("MLPLATFORM_LANDING", raising=False)
    return home


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def flights(tmp_path: Path, instance: dg.DagsterInstance) -> Harness:
    return Harness(small_window(load_spec("flight_delay")), tmp_path / "flights", instance)


@pytest.fixture(scope="session")
def trained_flights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, dict]]:
    """Real 2013 flights: 20 days ingested and a model trained and evaluated as of day 21.

    Shared by the tests that only read what it produced; tests that change state build their own.
    """
    with dg.instance_for_test() as test_instance:
        harness = Harness(
            small_window(load_spec("flight_delay")), tmp_path_factory.mktemp("trained"), test_instance
        )
        harness.replay("2013-01-01", 20)
        results = {
            "static": harness.materialize(harness.spec.static_references),
            "data": harness.materialize(harness.spec.daily_tables, first="2013-01-01", last="2013-01-20"),
            "model": harness.materialize(["model"], partition=TRAIN_AS_OF),
            "evaluation": harness.materialize(["evaluation", "candidate"], partition=TRAIN_AS_OF),
        }
        yield harness, results


@pytest.fixture
def champion(flights: Harness) -> Harness:
    """Real flights of 2013-01-01..20 ingested, and v1 (trained as of 2013-01-21) the champion."""
    flights.make_champion("2013-01-01", 20, TRAIN_AS_OF)
    return flights


@pytest.fixture
def two_versions(champion: Harness) -> Harness:
    """v1 the champion, trained on real flights; v2 registered from the same artifacts (a second
    candidate)."""
    flights = champion
    client = flights.client()
    v1 = client.get_model_version("flight_delay", "1")
    client.create_model_version(
        "flight_delay", v1.source, run_id=v1.run_id, tags={"threshold": v1.tags["threshold"]}
    )
    return flights
