"""Pipelines are independent in Dagster: broken pipeline folders beside the flight pipeline.

The project holds the flight pipeline and three broken folders (YAML that does not parse, a spec
that fails validation, a feature function that does not import). The flight pipeline's
definitions load and materialize; the workspace ``mlplatform up`` writes (one code location per
folder) is read by Dagster's own workspace loader and loaded in-process: the UI's GraphQL shows
each broken location's error naming its file and field, the flight location loads, and the
sensor daemon's own iteration evaluates the flight sensors.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from dagster_graphql.test.utils import execute_dagster_graphql

from mlplatform.cli import write_workspace
from mlplatform.core.pipelines import PipelineError, load_spec
from mlplatform.definitions import defs, pipeline_location
from mlplatform_tests.harness import Harness, failure_messages, small_window
from mlplatform_tests.projects import BROKEN, flights_beside_broken

LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError {
      __typename
      ... on PythonError { message causes { message } }
      ... on RepositoryLocation { repositories { assetNodes { id } sensors { name } } }
    }
} } } }
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The defs folder of the flight pipeline beside the broken ones, the one every loader reads."""
    defs_folder = flights_beside_broken(tmp_path / "project")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setenv("MLPLATFORM_DEFS_DIR", str(defs_folder))
    return defs_folder


def test_the_healthy_pipeline_loads_and_materializes_beside_broken_ones(
    project: Path, tmp_path: Path, instance: dg.DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="mlplatform.definitions"):
        location = defs()

    keys = {k.to_user_string() for k in location.resolve_asset_graph().get_all_asset_keys()}
    assert {"flight_delay/raw", "flight_delay/features", "flight_delay/model"} <= keys
    assert all(key.startswith("flight_delay/") for key in keys)
    dg.Definitions.validate_loadable(location)
    logged = caplog.text
    for folder, (_, problem) in BROKEN.items():
        assert f"{project / folder / 'defs.yaml'}: {problem}" in logged

    harness = Harness(small_window(load_spec("flight_delay")), tmp_path / "home", instance)
    harness.assets = list(location.assets or [])
    harness.replay("2013-01-01", 2)
    for result in (
        harness.materialize(harness.spec.static_references),
        harness.materialize(harness.spec.daily_tables, first="2013-01-01", last="2013-01-02"),
    ):
        assert result.success, failure_messages(result)
    assert harness.store.read("flight_delay", "features", "2013-01-02").height > 0


@pytest.mark.parametrize("folder", sorted(BROKEN))
def test_a_broken_pipelines_own_location_fails_naming_its_file_and_field(project: Path, folder: str) -> None:
    with pytest.raises(PipelineError) as raised:
        pipeline_location(project, folder)

    assert raised.value.path == project / folder / "defs.yaml"
    assert BROKEN[folder][1] in raised.value.problem


def test_the_workspace_has_one_location_per_pipeline_and_a_broken_one_does_not_stop_the_others(
    project: Path, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    workspace = write_workspace(tmp_path / "workspace.yaml")
    origins = location_origins_from_yaml_paths([str(workspace)])
    assert sorted(o.location_name for o in origins) == sorted(["flight_delay", *BROKEN])
    in_process = [
        InProcessCodeLocationOrigin(o.loadable_target_origin, location_name=o.location_name) for o in origins
    ]

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(in_process)) as context:
            result = execute_dagster_graphql(context.create_request_context(), LOCATIONS)
            list(execute_sensor_iteration(context, logging.getLogger("sensor-daemon"), None, None))
            repositories = (
                context.create_request_context().get_code_location("flight_delay").get_repositories()
            )
            landing = next(iter(repositories.values())).get_sensor("flight_delay_landing")
            ticks = instance.get_ticks(landing.get_remote_origin_id(), landing.selector_id)

    # What the webserver and the daemon log: one warning per broken location, none for the others.
    loading = [str(w.message) for w in warned if str(w.message).startswith("Error loading repository")]
    locations = sorted(message.split(":")[0].split()[-1] for message in loading)
    assert locations == sorted(BROKEN)
    entries = {e["name"]: e for e in result.data["workspaceOrError"]["locationEntries"]}
    flights = entries["flight_delay"]["locationOrLoadError"]
    assert flights["__typename"] == "RepositoryLocation"
    (repository,) = flights["repositories"]
    assert {"flight_delay_landing", "flight_delay_drift"} <= {s["name"] for s in repository["sensors"]}
    assert len(repository["assetNodes"]) >= 10
    for folder, (_, problem) in BROKEN.items():
        error = entries[folder]["locationOrLoadError"]
        assert error["__typename"] == "PythonError"
        assert f"attribute=pipeline_{folder}" in error["message"]
        assert f"{project / folder / 'defs.yaml'}: {problem}" in error["causes"][0]["message"]
    # The sensor daemon's own iteration ticked the flight sensors, broken locations beside them.
    assert ticks and ticks[0].status in (TickStatus.SKIPPED, TickStatus.SUCCESS), (
        ticks[0].error if ticks else None
    )
