"""The code locations: one per pipeline under ``defs/``, or every healthy pipeline in one.

Dagster runs a workspace of one code location per pipeline folder (``workspace_config``, written
by ``mlplatform up``; one user-code deployment each in helm/dagster-values.yaml), each loading
``pipeline_<folder>`` of this module: a pipeline that fails to load is its own location's error
in the UI, while the daemon goes on running the other locations' sensors and schedules. ``defs``
(``-m mlplatform.definitions``) is every healthy pipeline in one location, for tests and anyone
who points at the module; a broken pipeline is logged and left out of it.
"""

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from mlplatform.core.pipelines import defs_dir, pipeline_folders, read_folder
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.executors import executor_from_environment
from mlplatform.orchestration.known_warnings import ignore_known_warnings
from mlplatform.orchestration.resources import (
    LandingZone,
    MlflowTracking,
    PredictionLogFiles,
    warehouse_from_environment,
)

LOCATION_PREFIX = "pipeline_"
logger = logging.getLogger(__name__)
ignore_known_warnings()  # what the code servers print when they load a location


def shared_definitions() -> dg.Definitions:
    """The resources every pipeline's assets use, and the executor."""
    return dg.Definitions(
        resources={
            "warehouse": warehouse_from_environment(),
            "landing": LandingZone(),
            "mlflow_tracking": MlflowTracking(),
            "prediction_logs": PredictionLogFiles(),
            "alerts": AlertNotifier(),
        },
        executor=executor_from_environment(),
    )


def _folder_definitions(project: dg.ComponentTree, folder: str) -> dg.Definitions:
    """One pipeline folder as a component tree of its own, so no other folder's YAML is parsed.
    The plain check comes first: its ``PipelineError`` names the file and the field."""
    read_folder(project.defs_module_path / folder)
    module = importlib.import_module(f"{project.defs_module_name}.{folder}")
    return dg.ComponentTree.from_module(defs_module=module, project_root=project.project_root).build_defs()


def pipeline_location(project: Path, folder: str) -> dg.Definitions:
    """The code location of one pipeline folder of ``project``; raises if that pipeline is broken."""
    tree = dg.ComponentTree.for_project(project)
    return dg.Definitions.merge(_folder_definitions(tree, folder), shared_definitions())


def _without_component_tree(definitions: dg.Definitions) -> dg.Definitions:
    """The same definitions without the folder's component tree: Dagster merges at most one tree
    into a location, and the all-pipelines location holds one per folder."""
    return dg.Definitions(
        assets=definitions.assets,
        asset_checks=definitions.asset_checks,
        schedules=definitions.schedules,
        sensors=definitions.sensors,
        jobs=definitions.jobs,
        resources=definitions.resources,
        executor=definitions.executor,
        loggers=definitions.loggers,
        metadata=definitions.metadata,
    )


def code_location(project: Path) -> dg.Definitions:
    """Every healthy pipeline declared under ``project``'s defs folder, with the shared resources
    and the executor; a second project (tests build one) becomes a code location the same way."""
    tree = dg.ComponentTree.for_project(project)
    loaded = []
    for folder in pipeline_folders(tree.defs_module_path):
        try:
            loaded.append(_without_component_tree(_folder_definitions(tree, folder.name)))
        except Exception as exc:  # whatever breaks one pipeline must not take the others down
            logger.error("pipeline folder %r left out of the code location: %s", folder.name, exc)
    return dg.Definitions.merge(*loaded, shared_definitions())


def workspace_config() -> dict[str, Any]:
    """Dagster's workspace: one code location per pipeline folder of ``defs_dir()``, named after
    the folder, so adding a folder adds a location and nobody edits the workspace."""
    defs = defs_dir()
    root = str(dg.ComponentTree.for_project(defs).project_root)
    entries = [
        {
            "python_module": {
                "module_name": __name__,
                "attribute": f"{LOCATION_PREFIX}{folder.name}",
                "location_name": folder.name,
                "working_directory": root,
            }
        }
        for folder in pipeline_folders(defs)
    ]
    return {"load_from": entries}


@dg.definitions
def defs() -> dg.Definitions:
    return code_location(defs_dir())


def __getattr__(name: str) -> Callable[[], dg.Definitions]:
    """``pipeline_<folder>``: the loader of that folder's code location, called by Dagster."""
    if not name.startswith(LOCATION_PREFIX):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    folder = name.removeprefix(LOCATION_PREFIX)

    def location() -> dg.Definitions:
        return pipeline_location(defs_dir(), folder)

    return location
