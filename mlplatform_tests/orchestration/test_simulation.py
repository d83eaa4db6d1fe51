"""``mlplatform simulate`` on a few real days: each policy serves every flight, decides as designed,
and the report says what each cost."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import mlflow
import pytest

from mlplatform.orchestration.simulation import simulate

START, DAYS = dt.date(2013, 1, 21), 4


@pytest.mark.integration
def test_simulation_runs_each_policy_through_the_loop_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "simulation"
    report = simulate("flight_delay", START, DAYS, ["static", "daily"], out, parallel=1)

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
    assert (out / "live_metric.png").read_bytes().startswith(b"\x89PNG")
