"""Readiness per pipeline: a pipeline without a champion or with a broken spec never holds the
service back; one whose registry could not be read yet does. Real uvicorn servers on 127.0.0.1,
the real MLflow registry of the shared trained flights."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from mlplatform.serving.app import (
    BROKEN,
    NO_CHAMPION,
    SERVING,
    WAITING,
    build_pipeline,
    create_app,
    service_ready,
)
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.server import app_from_environment
from mlplatform_tests.harness import Harness
from mlplatform_tests.projects import BROKEN as BROKEN_FOLDERS
from mlplatform_tests.projects import FLIGHTS_YAML, write_project
from mlplatform_tests.serving.server import AUTH, TOKEN, AppServer


@pytest.mark.parametrize(
    ("states", "ready"),
    [
        ([SERVING], True),
        ([SERVING, NO_CHAMPION], True),  # a pipeline not trained yet does not hold the others back
        ([SERVING, BROKEN], True),  # nor does a broken spec: every replica has the same one
        ([NO_CHAMPION], True),  # a new platform: answers 503 per pipeline, no replica out of rotation
        ([SERVING, WAITING], False),  # a champion the registry may name is not loaded yet
        ([BROKEN], False),  # nothing this replica can ever serve
        ([], False),
    ],
)
def test_the_service_is_ready_unless_it_may_miss_a_champion(states: list[str], ready: bool) -> None:
    assert service_ready({f"p{n}": {"state": state} for n, state in enumerate(states)}) is ready


@pytest.fixture
def champion_v1(trained_flights: tuple[Harness, dict]) -> Iterator[Harness]:
    harness, _ = trained_flights
    client = harness.client()
    client.set_registered_model_alias("flight_delay", "champion", "1")
    yield harness
    client.delete_registered_model_alias("flight_delay", "champion")


def _record(harness: Harness) -> dict:
    raw = harness.store.read("flight_delay", "raw", "2013-01-20").head(1)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())[0]


def test_the_service_serves_healthy_pipelines_and_lists_the_others(
    champion_v1: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = champion_v1
    untrained = yaml.safe_load(FLIGHTS_YAML)
    untrained["attributes"]["spec"]["name"] = "flights_untrained"
    folders = {"flight_delay": FLIGHTS_YAML, "flights_untrained": yaml.safe_dump(untrained, sort_keys=False)}
    folders |= {name: BROKEN_FOLDERS[name][0] for name in ("bad_spec", "bad_yaml")}
    defs = write_project(tmp_path / "project", folders)
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", harness.tracking.tracking_uri)
    monkeypatch.setenv("MLPLATFORM_WAREHOUSE", str(harness.home / "warehouse"))
    monkeypatch.setenv("MLPLATFORM_PREDICTION_LOG", str(tmp_path / "predictions"))
    monkeypatch.setenv("MLPLATFORM_API_TOKEN", TOKEN)

    with AppServer(app_from_environment(poll_seconds=0.2)) as service:
        ready = httpx.get(f"{service.url}/ready")
        one = {name: httpx.get(f"{service.url}/ready/{name}") for name in [*folders, "nope"]}
        predict = {
            name: httpx.post(
                f"{service.url}/v1/pipelines/{name}/predict", json=_record(harness), headers=AUTH
            )
            for name in ("flight_delay", "flights_untrained", "bad_spec")
        }

    assert ready.status_code == 200 and ready.json()["ready"] is True
    entries = ready.json()["pipelines"]
    assert sorted(entries) == sorted(folders)
    assert entries["flight_delay"] | {"staleness_seconds": 0} == {
        "ready": True,
        "state": SERVING,
        "champion": "1",
        "staleness_seconds": 0,
        "registry_error": None,
        "registry_error_since": None,
        "refused": [],
        "error": None,
    }
    assert (
        entries["flights_untrained"]["state"] == NO_CHAMPION
        and entries["flights_untrained"]["ready"] is False
    )
    for name in ("bad_spec", "bad_yaml"):
        assert entries[name]["state"] == BROKEN
        assert f"{defs / name / 'defs.yaml'}: {BROKEN_FOLDERS[name][1]}" in entries[name]["error"]
    assert {name: r.status_code for name, r in one.items()} == {
        "flight_delay": 200,
        "flights_untrained": 503,
        "bad_spec": 503,
        "bad_yaml": 503,
        "nope": 404,
    }
    assert one["bad_spec"].json()["error"] == entries["bad_spec"]["error"]
    assert (
        predict["flight_delay"].status_code == 200 and predict["flight_delay"].json()["model_version"] == "1"
    )
    assert predict["flights_untrained"].status_code == 503
    assert "no champion" in predict["flights_untrained"].json()["error"]
    assert predict["bad_spec"].status_code == 404


def test_a_registry_not_read_yet_holds_the_service_back_until_it_is(
    champion_v1: Harness, tmp_path: Path
) -> None:
    harness = champion_v1

    def unreachable() -> None:
        raise ConnectionError("registry at 127.0.0.1:9 refused the connection")

    pipeline = build_pipeline(harness.spec, harness.home / "warehouse", unreachable, poll_seconds=0.2)
    app = create_app({"flight_delay": pipeline}, PredictionLog(tmp_path / "predictions", 0.2))
    with AppServer(app) as service:
        waiting = httpx.get(f"{service.url}/ready")
        pipeline.models._client = harness.client
        deadline = time.monotonic() + 15
        while httpx.get(f"{service.url}/ready/flight_delay").status_code != 200:
            assert time.monotonic() < deadline, "the champion was not loaded once the registry answered"
            time.sleep(0.1)
        ready = httpx.get(f"{service.url}/ready")

    assert waiting.status_code == 503
    entry = waiting.json()["pipelines"]["flight_delay"]
    assert entry["state"] == WAITING and "refused the connection" in entry["registry_error"]
    assert ready.status_code == 200 and ready.json()["pipelines"]["flight_delay"]["champion"] == "1"
