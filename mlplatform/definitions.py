"""The code location: every pipeline under ``defs/`` plus the cross-cutting resources."""

from pathlib import Path

import dagster as dg

from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.executors import executor_from_environment
from mlplatform.orchestration.resources import (
    LandingZone,
    MlflowTracking,
    PredictionLogFiles,
    warehouse_from_environment,
)


def code_location(project: Path) -> dg.Definitions:
    """Every pipeline declared under ``project``'s defs folder, with the shared resources and the
    executor; a second project (tests build one) becomes a code location the same way."""
    pipelines = dg.load_from_defs_folder(path_within_project=project)
    shared = dg.Definitions(
        resources={
            "warehouse": warehouse_from_environment(),
            "landing": LandingZone(),
            "mlflow_tracking": MlflowTracking(),
            "prediction_logs": PredictionLogFiles(),
            "alerts": AlertNotifier(),
        },
        executor=executor_from_environment(),
    )
    return dg.Definitions.merge(pipelines, shared)


@dg.definitions
def defs() -> dg.Definitions:
    return code_location(Path(__file__).parent)
