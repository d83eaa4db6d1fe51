"""The whole code location loads, with every pipeline's assets, checks and resources."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from mlplatform import definitions
from mlplatform.core.pipelines import defs_dir, read_folder
from mlplatform.definitions import defs, workspace_config
from mlplatform.orchestration.known_warnings import ignore_known_warnings
from mlplatform_tests.projects import FLIGHTS_YAML, write_project


def test_code_location_loads_every_asset_check_and_resource() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}

    for name in ("raw", "weather", "planes", "airports", "airlines", "features", "model", "evaluation"):
        assert f"flight_delay/{name}" in keys
    for name in ("raw", "features", "model", "evaluation", "candidate"):
        assert f"room_rate/{name}" in keys
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("flight_delay/raw", "contract") in checks
    assert ("flight_delay/features", "feature_schema") in checks
    assert set(definitions.resources or {}) >= {"warehouse", "landing", "mlflow_tracking", "alerts"}
    definitions.resolve_implicit_global_asset_job_def()
    # What the daemon and the UI load: every job, sensor and schedule resolves with its resources.
    dg.Definitions.validate_loadable(definitions)


def test_each_pipeline_has_its_jobs_sensors_and_schedule() -> None:
    definitions = defs()
    for job in ("ingest", "retrain", "deploy", "rollback", "late_log"):
        assert definitions.resolve_job_def(f"flight_delay_{job}").name == f"flight_delay_{job}"
    sensors = {s.name: s for s in definitions.sensors or []}
    for sensor in (
        "landing",
        "late_log",
        "drift",
        "performance",
        "freshness",
        "rollout_controller",
        "automation",
    ):
        assert sensors[f"flight_delay_{sensor}"].default_status == dg.DefaultSensorStatus.RUNNING
    schedule = definitions.resolve_schedule_def("flight_delay_nightly")
    assert schedule.cron_schedule == "0 2 * * *"
    graph = definitions.resolve_asset_graph()
    features = graph.get(dg.AssetKey(["flight_delay", "features"]))
    assert features.automation_condition is not None


def test_backfilled_assets_run_as_a_single_run() -> None:
    definitions = defs()
    for name in ("raw", "weather", "features"):
        asset = definitions.resolve_assets_def(dg.AssetKey(["flight_delay", name]))
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()


def test_model_depends_on_the_window_of_features_before_its_day() -> None:
    graph = defs().resolve_asset_graph()
    model, features = dg.AssetKey(["flight_delay", "model"]), dg.AssetKey(["flight_delay", "features"])
    upstream = graph.get_parent_partition_keys_for_child("2013-03-01", features, model)
    assert sorted(upstream.partitions_subset.get_partition_keys())[0] == "2013-01-04"
    assert sorted(upstream.partitions_subset.get_partition_keys())[-1] == "2013-02-28"


def test_each_pipeline_folder_is_a_code_location_of_its_own() -> None:
    """The workspace lists one location per folder under mlplatform/defs, each loading that folder's
    pipeline alone (what `mlplatform up` and the Helm user-code deployments run)."""
    folders = sorted(p.parent.name for p in defs_dir().glob("*/defs.yaml"))
    entries = [entry["python_module"] for entry in workspace_config()["load_from"]]

    assert [entry["location_name"] for entry in entries] == folders
    for entry in entries:
        assert entry["module_name"] == "mlplatform.definitions"
        location = getattr(definitions, entry["attribute"])()
        keys = {k.path[0] for k in location.resolve_asset_graph().get_all_asset_keys()}
        assert keys == {spec.name for spec in read_folder(defs_dir() / entry["location_name"])}
        dg.Definitions.validate_loadable(location)


def test_several_healthy_pipelines_share_the_all_pipelines_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each folder is its own component tree, and Dagster merges at most one into a location: the
    all-pipelines location (``defs``) still holds every healthy folder."""
    defs_folder = write_project(
        tmp_path / "project",
        {
            "flight_delay": FLIGHTS_YAML,
            "flights_again": FLIGHTS_YAML.replace("name: flight_delay", "name: flights_again", 1),
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs_folder))

    keys = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}

    assert {"flight_delay/model", "flights_again/model"} <= keys


def test_a_code_server_loading_a_pipeline_prints_no_warning() -> None:
    """What a code server of the webserver and the daemon does at start: build the location and its
    snapshot. Every warning is recorded; only the known, named ones are silenced."""
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        ignore_known_warnings()
        location = definitions.pipeline_location(defs_dir(), "flight_delay")
        RepositorySnap.from_def(location.get_repository_def())

    assert [f"{type(w.message).__name__}: {w.message}" for w in warned] == []
