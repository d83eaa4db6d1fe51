"""The ``ModelPipeline`` component: one ``defs.yaml`` becomes one pipeline's assets and checks.

The spec itself is a plain pydantic model (``mlplatform.core.spec``); the component only validates
it at load time (``core.pipelines.validated_spec``: every field, and the feature function imports),
so an error names the field path, and wires the pieces together.
"""

from dataclasses import dataclass
from typing import Annotated, Any

import dagster as dg

from mlplatform.core.pipelines import validated_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.automation import automation_sensor
from mlplatform.orchestration.batch_assets import batch_predictions_asset
from mlplatform.orchestration.daily_data import daily_data_asset
from mlplatform.orchestration.deployment_assets import deployment_asset, rollback_job
from mlplatform.orchestration.ingest_assets import static_reference_assets
from mlplatform.orchestration.jobs import pipeline_jobs
from mlplatform.orchestration.late_data import late_log_job, late_log_sensor
from mlplatform.orchestration.model_assets import model_asset
from mlplatform.orchestration.monitoring_assets import (
    drift_asset,
    live_performance_asset,
    prediction_log_asset,
)
from mlplatform.orchestration.promotion_assets import candidate_asset, evaluation_asset
from mlplatform.orchestration.rollout_controller import rollout_controller
from mlplatform.orchestration.sensors import (
    drift_sensor,
    freshness_sensor,
    landing_sensor,
    nightly_schedule,
    performance_sensor,
)


def _validate_spec(context: dg.ResolutionContext, value: Any) -> PipelineSpec:
    return validated_spec(value)


def daily_partitions(spec: PipelineSpec) -> dg.DailyPartitionsDefinition:
    end = spec.source.end_date.isoformat() if spec.source.end_date else None
    return dg.DailyPartitionsDefinition(start_date=spec.source.start_date.isoformat(), end_date=end)


def pipeline_definitions(spec: PipelineSpec) -> dg.Definitions:
    """Every asset, check, job, sensor and schedule of one pipeline; resources are bound by the
    code location."""
    partitions = daily_partitions(spec)
    jobs = pipeline_jobs(spec)
    rollback = rollback_job(spec)
    late_log = late_log_job(spec)
    return dg.Definitions(
        assets=[
            *static_reference_assets(spec),
            daily_data_asset(spec, partitions),
            model_asset(spec, partitions),
            evaluation_asset(spec, partitions),
            candidate_asset(spec, partitions),
            deployment_asset(spec),
            prediction_log_asset(spec, partitions),
            live_performance_asset(spec, partitions),
            drift_asset(spec, partitions),
            batch_predictions_asset(spec, partitions),
        ],
        jobs=[jobs.ingest, jobs.retrain, jobs.deploy, rollback, late_log],
        sensors=[
            landing_sensor(spec, jobs),
            late_log_sensor(spec, late_log),
            drift_sensor(spec, jobs),
            performance_sensor(spec, jobs),
            freshness_sensor(spec, jobs),
            rollout_controller(spec, jobs, rollback),
            automation_sensor(spec.name, spec.monitoring.sensor_interval_seconds),
        ],
        schedules=[nightly_schedule(spec, jobs)],
    )


@dataclass
class ModelPipeline(dg.Component, dg.Resolvable):
    """A declared model pipeline: landing files to a registered, evaluated model."""

    spec: Annotated[Any, dg.Resolver(_validate_spec, model_field_type=dict[str, Any])]

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return pipeline_definitions(self.spec)
