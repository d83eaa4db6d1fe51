"""A second pipeline from a defs.yaml and a feature function alone: no platform code changes.

The test writes a small project of its own (the machine readings of ``machines``, other column
names, a static reference table, a date-typed partition column), loads it the way Dagster loads
the real code location, and runs it from landing files to an evaluated, registered model.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import dagster as dg
import pytest

from mlplatform.core.pipelines import load_spec
from mlplatform_tests import machines
from mlplatform_tests.harness import Harness, failure_messages

ASSETS = ["raw", "machines", "features", "model", "evaluation", "candidate"]
ASSETS += ["deployment", "prediction_log", "live_performance", "drift", "batch_predictions"]

DEFS_YAML = """
type: mlplatform.orchestration.component.ModelPipeline
attributes:
  spec:
    name: machine_failure
    source:
      path: readings/{day}.parquet
      format: parquet
      partition_expr: reading_date
      start_date: 2024-03-01
    schema:
      primary_key: [machine_id, taken_at]
      columns:
        machine_id: {type: str}
        taken_at: {type: datetime}
        reading_date: {type: date}
        temperature_c: {type: float, min: -50, max: 200}
        vibration_mm_s: {type: float, nullable: true, min: 0}
        line: {type: str, allowed: [A, B, C]}
        plant: {type: str, allowed: [north, south]}
        downtime_minutes: {type: float, nullable: true, post_event: true}
    references:
      machines:
        path: static/machines.parquet
        key: [machine_id]
        schema:
          primary_key: [machine_id]
          columns:
            machine_id: {type: str}
            installed_year: {type: int, min: 1990, max: 2024}
    entity: [machine_id, taken_at]
    timestamp: taken_at
    label: {name: breaks_down, expr: downtime_minutes > 30, when_null: negative}
    features:
      function: second_project.defs.machine_failure.features:sensor_features
      categorical: [line]
      numeric: [temperature_c, vibration_mm_s, machine_age, hour]
    model:
      params: {learning_rate: 0.1, num_leaves: 15}
      num_boost_round: 80
      early_stopping_rounds: 10
      train_days: 6
      validation_days: 2
      test_days: 2
      min_rows: 500
"""

FEATURES_PY = """
import polars as pl

def sensor_features(readings: pl.DataFrame, references: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return readings.join(references["machines"], on="machine_id", how="left").with_columns(
        machine_age=2024 - pl.col("installed_year"),
        hour=pl.col("taken_at").dt.hour(),
    )
"""


def _write_project(root: Path) -> None:
    pipeline = root / "second_project" / "defs" / "machine_failure"
    pipeline.mkdir(parents=True)
    for package in (root / "second_project", root / "second_project" / "defs", pipeline):
        (package / "__init__.py").write_text("")
    (pipeline / "defs.yaml").write_text(DEFS_YAML)
    (pipeline / "features.py").write_text(textwrap.dedent(FEATURES_PY))
    (root / "pyproject.toml").write_text(
        '[tool.dg]\ndirectory_type = "project"\n\n[tool.dg.project]\n'
        'root_module = "second_project"\ndefs_module = "second_project.defs"\n'
    )


def test_second_pipeline_runs_from_its_defs_yaml_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance: dg.DagsterInstance
) -> None:
    _write_project(tmp_path / "project")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(tmp_path / "project" / "second_project" / "defs"))
    loaded = dg.load_from_defs_folder(path_within_project=tmp_path / "project")
    harness = Harness(load_spec("machine_failure"), tmp_path / "home", instance)
    location = dg.Definitions.merge(loaded, dg.Definitions(resources=harness.resources))
    keys = {k.to_user_string() for k in location.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {f"machine_failure/{n}" for n in ASSETS}
    harness.assets = list(loaded.assets or [])
    machines.write_landing(harness.landing, days=10, seed=3, missing_downtime=0.05)

    assert harness.materialize(["machines"]).success
    data = harness.materialize(["raw", "features"], first="2024-03-01", last="2024-03-10")
    assert data.success, failure_messages(data)
    features = harness.store.read("machine_failure", "features", "2024-03-05")
    assert "downtime_minutes" not in features.columns
    assert {"machine_age", "hour", "breaks_down"} <= set(features.columns)

    model = harness.materialize(["model", "evaluation", "candidate"], partition="2024-03-11")
    assert model.success, failure_messages(model)
    versions = harness.client().search_model_versions("name = 'machine_failure'")
    assert [v.tags["as_of"] for v in versions] == ["2024-03-11"]
    evaluation = next(
        e.materialization.metadata
        for e in model.get_asset_materialization_events()
        if e.asset_key.path[-1] == "evaluation"
    )
    assert evaluation["test_auc"].value > 0.7
    assert harness.client().get_model_version_by_alias("machine_failure", "champion").version == 1

    batch = harness.materialize(["batch_predictions"], first="2024-03-09", last="2024-03-10")
    assert batch.success, failure_messages(batch)
    scored = harness.store.read_days("machine_failure", "batch_predictions", ["2024-03-09", "2024-03-10"])
    rows = harness.store.read_days("machine_failure", "features", ["2024-03-09", "2024-03-10"])
    assert scored.columns == [
        "machine_id",
        "taken_at",
        "breaks_down",
        "breaks_down_probability",
        "model_version",
    ]
    assert (
        scored.schema["taken_at"]
        == harness.store.read("machine_failure", "raw", "2024-03-09").schema["taken_at"]
    )
    assert scored.height == rows.height and set(scored["model_version"]) == {"1"}
