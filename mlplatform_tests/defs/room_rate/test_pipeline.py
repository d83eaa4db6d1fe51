"""The room-rate pipeline (a regression) end to end on its real bookings: `mlplatform bootstrap`,
the gated path's decisions, the prediction service's answer and a continuous-training decision.

The model side runs through ``mlplatform simulate`` (Dagster's in-memory instance, a real MLflow
registry, the service's own app, the pipeline's own schedule): 24 days of real history before
2016-07-26 bootstrap the first model (a 16/4/4-day window), then two real days are served
booking by booking and retrained nightly, every retraining through the gates.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import mlflow
import polars as pl
import pytest

from mlplatform.cli import main
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.pipelines import load_spec
from mlplatform.orchestration.simulation import simulate
from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.serving.server import AppServer

START, DAYS = dt.date(2016, 7, 26), 2
SERVED = [(START + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
QUALITY_GATES = ["metric_floors", "beats_champion", "slice_disparity", "determinism", "robustness"]


def test_bootstrap_ingests_real_arrival_days(
    isolated_home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `make run` runs for each pipeline of PIPELINES (here two days: data only, fewer than
    the model's window)."""
    monkeypatch.setenv("DAGSTER_HOME", str(isolated_home / "dagster"))
    (isolated_home / "dagster").mkdir(parents=True)

    assert main(["bootstrap", "--pipeline", "room_rate", "--days", "2"]) == 0

    out = capsys.readouterr().out
    assert "ok     raw and features 2016-07-02..2016-07-03 (one run)" in out
    assert "skip   model: 2 days are fewer than the 56-day window + 1" in out
    features = pl.read_parquet(isolated_home / "warehouse/room_rate/features/day=2016-07-02/data.parquet")
    assert features.height == 34  # the 34 bookings arriving on 2 July 2016
    assert features["daily_rate"].dtype == pl.Float64 and features["daily_rate"].min() > 0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("room_rate_simulation")
    simulate("room_rate", START, DAYS, ["daily"], out, parallel=1)
    return out


def _client(simulated: Path) -> mlflow.MlflowClient:
    uri = f"sqlite:///{simulated / 'daily' / 'mlflow' / 'mlflow.db'}"
    return mlflow.MlflowClient(uri, uri)


def test_the_first_model_passes_the_quality_gates_on_real_bookings(simulated: Path) -> None:
    client = _client(simulated)
    first = client.get_model_version("room_rate", "1")
    metrics = client.get_run(first.run_id).data.metrics

    assert first.tags["as_of"] == START.isoformat()
    assert {g: first.tags[f"gate.{g}"] for g in QUALITY_GATES} == dict.fromkeys(QUALITY_GATES, "passed")
    assert metrics["test_r2"] >= 0.2 and metrics["test_rmse"] <= 40  # the spec's floors
    assert str(client.get_model_version_by_alias("room_rate", "champion").version) == "1"


def test_every_booking_is_answered_and_the_nightly_retraining_is_decided_by_the_gates(
    simulated: Path,
) -> None:
    result = json.loads((simulated / "results.json").read_text())["daily"]
    store = ParquetWarehouse(simulated / "data" / "warehouse")
    arrivals = [store.read("room_rate", "raw", day).height for day in SERVED]

    assert result["days"] == SERVED and result["served"] == arrivals
    assert result["retrainings"] == DAYS and result["triggers"] == {"schedule": DAYS}
    decided = _client(simulated).search_model_versions("name = 'room_rate'")
    retrained = sorted((v for v in decided if str(v.version) != "1"), key=lambda v: v.tags["as_of"])
    assert [v.tags["as_of"] for v in retrained] == ["2016-07-27", "2016-07-28"]
    for version in retrained:  # each a decision with its reasons, on real data
        gates = {k: v for k, v in version.tags.items() if k.startswith("gate.")}
        assert set(gates.values()) <= {"passed", "failed"} and len(gates) >= 6
        assert (version.tags.get("decision") == "approved") == all(v == "passed" for v in gates.values())


def test_the_service_answers_a_real_booking_with_its_daily_rate(simulated: Path) -> None:
    spec = load_spec("room_rate")
    home = simulated / "daily"
    pipeline = build_pipeline(spec, home / "warehouse", lambda: _client(simulated), poll_seconds=0.2)
    booking = (
        ParquetWarehouse(simulated / "data" / "warehouse")
        .read("room_rate", "raw", SERVED[-1])
        .row(0, named=True)
    )
    record = {c: booking[c] for c in spec.serving_columns} | {
        "arrival_date": booking["arrival_date"].isoformat()
    }
    app = create_app({"room_rate": pipeline}, PredictionLog(home / "served", 0.2), None, 50)

    with AppServer(app) as server:
        ready = httpx.get(f"{server.url}/ready/room_rate", timeout=30)
        answer = httpx.post(f"{server.url}/v1/pipelines/room_rate/predict", json=record, timeout=30)
        schema = httpx.get(f"{server.url}/openapi.json").json()

    assert ready.status_code == 200
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"request_id", "daily_rate", "model_version", "variant"}
    assert 19 <= body["daily_rate"] <= 430  # within the hotel's real range of nightly prices
    assert "daily_rate" in json.dumps(schema)
