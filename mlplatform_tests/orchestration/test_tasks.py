"""A multiclass and a regression pipeline through the real assets, the service and live performance.

Small data the test builds (machine readings whose downtime follows temperature and vibration), a
spec per task, and the same path as the flight pipeline: ingestion, training with the task's
objective, the evaluation's gates and plots, promotion, the service's answer keyed by the label,
and the day's live metric once its labels arrived. The slice column ``plant`` is a raw column that
is not a feature: it reaches the slice table and never the model.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from pathlib import Path

import dagster as dg
import httpx
import mlflow
import numpy as np
import pytest
from sklearn.metrics import log_loss

from mlplatform.core.monitoring.live import join_labels
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.tracking import load_version
from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests import machines
from mlplatform_tests.core.evaluation.test_model_gates import GATE_NAMES
from mlplatform_tests.harness import Harness, failure_messages

DAYS, AS_OF = 11, "2024-03-11"
CLASSES = ["none", "short", "long"]
LABELS = {
    "multiclass": {
        "name": "downtime_class",
        "expr": "CASE WHEN downtime_minutes > 60 THEN 'long' WHEN downtime_minutes > 10 THEN 'short' "
        "WHEN downtime_minutes >= 0 THEN 'none' END",
        "when_null": "drop",
        "classes": CLASSES,
    },
    "regression": {"name": "downtime", "expr": "downtime_minutes", "when_null": "drop"},
}
GAPS = {"multiclass": {"accuracy": 0.5}, "regression": {"mae": 60.0}}


def machine_spec(task: str) -> PipelineSpec:
    return machines.machine_spec(
        f"machine_{task}",
        task,
        LABELS[task],
        gates={"slice_columns": ["line", "plant"], "slice_gaps": GAPS[task], "min_slice_rows": 50},
        rollout={"min_labelled": 100},
        # One day of 300 readings: its live figure may sit this far from the test days' own.
        monitoring={"max_live_drop": 0.15},
    )


async def _serve(harness: Harness, records: list[dict]) -> list[dict]:
    """The day's readings through the real app, answered and logged as in production."""
    service = build_pipeline(harness.spec, harness.home / "warehouse", harness.client, poll_seconds=3600)
    log = PredictionLog(harness.home / "predictions", flush_seconds=3600)
    app = create_app({harness.spec.name: service}, log)
    url = f"/v1/pipelines/{harness.spec.name}/predict"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            response = await http.post(url, json={"records": records}, headers={"X-Request-Id": "day"})
            schema = (await http.get("/openapi.json")).json()
    assert response.status_code == 200, response.text
    answers = schema["paths"]["/v1/pipelines/{name}/predict"]["post"]["responses"]["200"]["content"]
    ((one, _),) = [s["anyOf"] for s in answers["application/json"]["schema"]["anyOf"]]
    assert one["title"] == f"{harness.spec.name} answer"
    return [{"schema": list(one["properties"])}, *response.json()["predictions"]]


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_a_pipeline_of_each_task_trains_gates_serves_and_is_measured_live(
    task: str, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    harness = Harness(machine_spec(task), tmp_path, instance)
    machines.write_landing(harness.landing, DAYS, seed=5)
    last = (machines.START + dt.timedelta(days=DAYS - 1)).isoformat()
    for result in (
        harness.materialize(["machines"]),
        harness.materialize(["raw", "features"], first=machines.START.isoformat(), last=last),
        harness.materialize(["model", "evaluation", "candidate"], partition=AS_OF),
    ):
        assert result.success, failure_messages(result)
    evaluation = next(
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "evaluation"
    )
    label = harness.spec.label.name

    # The task's metrics, plots and slices; the non-feature slice column never reached the model.
    if task == "multiclass":
        assert evaluation["test_accuracy"].value > 0.6 and evaluation["test_macro_f1"].value > 0.5
        assert {"test_log_loss", "test_recall_none", "test_recall_short", "test_recall_long"} <= set(
            evaluation
        )
        assert "![confusion matrix](data:image/png;base64," in evaluation["report"].value
    else:
        assert evaluation["test_r2"].value > 0.5 and evaluation["test_rmse"].value > 0
        assert "![predicted against actual]" in evaluation["report"].value
        assert "![residuals by plant]" in evaluation["report"].value
    assert (
        "| plant | north |" in evaluation["slices"].value
        and "| plant | south |" in evaluation["slices"].value
    )
    assert json.loads(json.dumps(evaluation["gates"].value)) == dict.fromkeys(GATE_NAMES, True)
    model = load_version(harness.spec.name, "1")
    outputs = mlflow.models.get_model_info(f"models:/{harness.spec.name}/1").signature.outputs.input_names()
    assert outputs == (CLASSES if task == "multiclass" else [0])  # one unnamed column
    assert (
        "plant" not in model.encoding.features
        and "plant" not in harness.store.read(harness.spec.name, "features", AS_OF).columns
    )
    assert str(harness.client().get_model_version_by_alias(harness.spec.name, "champion").version) == "1"

    # The service answers with the label's own keys.
    records = json.loads(
        harness.store.read(harness.spec.name, "raw", last).select(harness.spec.serving_columns).write_json()
    )
    keys, *answers = asyncio.run(_serve(harness, records))
    first = answers[0]
    if task == "multiclass":
        assert keys["schema"] == ["request_id", label, f"{label}_probabilities", "model_version", "variant"]
        assert first[label] in CLASSES and list(first[f"{label}_probabilities"]) == CLASSES
        assert first[label] == max(CLASSES, key=first[f"{label}_probabilities"].get)
    else:
        assert keys["schema"] == ["request_id", label, "model_version", "variant"]
        assert isinstance(first[label], float) and first[label] > 0
    assert "delayed" not in first and "prediction" not in first
    assert (first["model_version"], first["variant"]) == ("1", "champion")

    # Its labels arrive: the live metric of the task.
    live = harness.materialize(["prediction_log", "live_performance"], partition=last)
    assert live.success, failure_messages(live)
    measured = next(
        e.materialization.metadata
        for e in live.get_asset_materialization_events()
        if e.asset_key.path[-1] == "live_performance"
    )
    assert measured["live_metric"].value == {"multiclass": "accuracy", "regression": "r2"}[task]
    assert measured["labelled_predictions"].value == len(records)
    assert measured["served_metric"].value > (0.6 if task == "multiclass" else 0.5)
    check = next(
        e.event_specific_data for e in live.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    )
    assert check.passed
    if task == "multiclass":  # the log kept every class's probability: the live log loss
        logged = harness.store.read(harness.spec.name, "prediction_log", last)
        answered = [[a[f"{label}_probabilities"][c] for c in CLASSES] for a in answers]
        assert np.allclose(logged["probabilities"].to_list(), answered)
        joined = join_labels(
            logged, harness.store.read(harness.spec.name, "features", last), harness.spec.entity, label
        )
        expected = log_loss(joined[label].to_numpy(), joined["probabilities"].to_list(), labels=[0, 1, 2])
        (champion,) = measured["by_variant"].value
        assert champion["log_loss"] == pytest.approx(expected) and 0 < expected < math.log(len(CLASSES))
