"""model and evaluation trained for real on 20 days of 2013 flights (the session fixture)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from mlplatform.core.deployment.integrity import DIGEST_TAG, artifact_digest
from mlplatform.core.training.tracking import load_version
from mlplatform.orchestration.promotion_assets import MODEL_GATES
from mlplatform_tests.conftest import TRAIN_AS_OF
from mlplatform_tests.dagster_ui import check_statuses, code_location
from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


def _metadata(result, name: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == name]
    assert len(events) == 1
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_model_is_registered_with_pipeline_date_and_run_tags(trained_flights: tuple[Harness, dict]) -> None:
    harness, results = trained_flights
    result = results["model"]
    assert result.success, failure_messages(result)
    metadata = _metadata(result, "model")

    version = harness.client().get_model_version("flight_delay", metadata["model_version"])

    assert version.tags["pipeline"] == "flight_delay"
    assert version.tags["as_of"] == TRAIN_AS_OF
    assert version.tags["dagster_run_id"] == result.run_id
    assert version.run_id == metadata["mlflow_run_id"]
    assert 0 < float(version.tags["threshold"]) < 1
    assert metadata["converged"] is True
    assert "mlflow_run" in metadata and metadata["mlflow_run"].endswith(metadata["mlflow_run_id"])
    with tempfile.TemporaryDirectory() as scratch:
        folder = mlflow.artifacts.download_artifacts(
            f"models:/flight_delay/{version.version}", dst_path=scratch
        )
        assert version.tags[DIGEST_TAG] == artifact_digest(Path(folder))
    # MLflow's logged model behind the version carries the run's parameters and validation metrics.
    (output,) = harness.client().get_run(version.run_id).outputs.model_outputs
    logged = harness.client().get_logged_model(output.model_id)
    assert logged.source_run_id == version.run_id
    assert logged.params["as_of"] == TRAIN_AS_OF
    assert {m.key: m.value for m in logged.metrics or []}["validation_auc"] == metadata["validation_auc"]


def test_training_run_logs_params_metrics_importance_and_every_input_version(
    trained_flights: tuple[Harness, dict], tmp_path: Path
) -> None:
    harness, results = trained_flights
    run_id = _metadata(results["model"], "model")["mlflow_run_id"]
    run = harness.client().get_run(run_id)

    assert run.data.params["as_of"] == TRAIN_AS_OF
    assert run.data.params["train_days"] == "2013-01-01..2013-01-14"
    assert run.data.params["test_days"] == "2013-01-18..2013-01-20"
    assert run.data.params["lgb.objective"] == "binary"
    assert 0.5 < run.data.metrics["validation_auc"] <= 1
    assert 0.5 < run.data.metrics["test_auc"] <= 1
    local = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path))
    versions = json.loads((Path(local) / "data_versions.json").read_text())
    assert sorted(versions) == [f"features/day=2013-01-{d:02d}" for d in range(1, 21)]
    for key, value in versions.items():
        day = key.removeprefix("features/day=")
        assert value == harness.store.data_version("flight_delay", "features", day)
    importance = json.loads((Path(local) / "feature_importance.json").read_text())
    assert {row["feature"] for row in importance["features"]} == set(harness.spec.features.columns)


def test_evaluation_scores_the_registered_version_on_the_test_days(
    trained_flights: tuple[Harness, dict],
) -> None:
    harness, results = trained_flights
    model_md = _metadata(results["model"], "model")
    evaluation = _metadata(results["evaluation"], "evaluation")

    test = harness.store.read_days("flight_delay", "features", ["2013-01-18", "2013-01-19", "2013-01-20"])
    assert evaluation["test_rows"] == test.height
    assert evaluation["model_version"] == model_md["model_version"]
    for metric in ("test_auc", "test_log_loss", "test_precision", "test_recall", "test_f1", "test_base_rate"):
        assert metric in evaluation
    assert evaluation["test_auc"] > 0.6
    assert abs(evaluation["test_base_rate"] - float(test["delayed"].mean())) < 1e-9
    model = load_version("flight_delay", str(model_md["model_version"]))
    assert model.encoding.features == harness.spec.features.columns


def test_every_model_gate_shows_its_result_on_the_as_of_day(trained_flights: tuple[Harness, dict]) -> None:
    """The evaluation's Partitions tab of each gate: the as-of day passed or failed, no day missing."""
    harness, results = trained_flights
    gates = {
        e.check_name: "SUCCEEDED" if e.passed else "FAILED" for e in check_evaluations(results["evaluation"])
    }

    with code_location(harness.instance) as ui:
        statuses = check_statuses(ui, "evaluation")

    assert set(gates) == set(MODEL_GATES)
    assert statuses == {name: [(status, TRAIN_AS_OF, TRAIN_AS_OF)] for name, status in gates.items()}


def test_model_without_its_window_fails_naming_the_missing_days(flights: Harness) -> None:
    result = flights.materialize(["model"], partition="2013-02-01")

    assert not result.success
    message = failure_messages(result)
    assert "flight_delay/features is missing" in message and "2013-01-12" in message


def test_registered_version_is_servable_by_mlflow_from_encoded_rows(
    trained_flights: tuple[Harness, dict],
) -> None:
    harness, results = trained_flights
    version = str(_metadata(results["model"], "model")["model_version"])
    ours = load_version("flight_delay", version)
    rows = harness.store.read("flight_delay", "features", "2013-01-20").head(50)
    encoded = pd.DataFrame(ours.encoding.matrix(rows), columns=ours.encoding.features)

    served = mlflow.pyfunc.load_model(f"models:/flight_delay/{version}").predict(encoded)

    assert np.asarray(served) == pytest.approx(ours.predict(rows), abs=1e-12)
