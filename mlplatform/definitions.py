"""The code location: every pipeline under ``defs/`` plus the cross-cutting resources."""

from pathlib import Path

import dagster as dg

from mlplatform.lib.orchestration.resources import (
    LandingZone,
    LocalWarehouse,
    MlflowTracking,
    PredictionLogFiles,
)


@dg.definitions
def defs() -> dg.Definitions:
    pipelines = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    shared = dg.Definitions(
        resources={
            "warehouse": LocalWarehouse(),
            "landing": LandingZone(),
            "mlflow_tracking": MlflowTracking(),
            "prediction_logs": PredictionLogFiles(),
        }
    )
    return dg.Definitions.merge(pipelines, shared)
