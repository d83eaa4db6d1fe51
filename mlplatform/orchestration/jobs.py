"""The jobs sensors and schedules launch, named so the runs page says what each run was for.

- ``<pipeline>_ingest``: the day's landing files into ``raw`` and the daily references, and their
  ``features``, all or nothing (the monitoring assets follow by declarative automation);
- ``<pipeline>_retrain``: the gated path for one as-of day: ``model``, ``evaluation``, ``candidate``
  (a failing gate stops it before ``candidate``, so no alias moves);
- ``<pipeline>_deploy``: one step of the challenger's rollout (``deployment``);
- ``<pipeline>_rollback``: in ``deployment_assets``.
"""

from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from mlplatform.core.spec import PipelineSpec

# The gated path: what a retraining runs, so an alias moves only through every gate.
GATED_PATH = ("model", "evaluation", "candidate")
# Run statuses of a run that has not finished: the sensors wait for these rather than launch twice.
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class PipelineJobs:
    ingest: UnresolvedAssetJobDefinition
    retrain: UnresolvedAssetJobDefinition
    deploy: UnresolvedAssetJobDefinition


def pipeline_jobs(spec: PipelineSpec) -> PipelineJobs:
    key = lambda name: dg.AssetKey([spec.name, name])  # noqa: E731
    daily_refs = [key(n) for n in spec.daily_references]
    tags = {"mlplatform/pipeline": spec.name}
    return PipelineJobs(
        ingest=dg.define_asset_job(
            f"{spec.name}_ingest",
            selection=dg.AssetSelection.assets(key("raw"), *daily_refs, key("features")),
            tags=tags,
            description="Ingest one day's landing files and build its features, all or nothing "
            "(requested by the landing sensor).",
        ),
        retrain=dg.define_asset_job(
            f"{spec.name}_retrain",
            selection=dg.AssetSelection.assets(*[key(n) for n in GATED_PATH]),
            tags=tags,
            description="Train as of a day, run every gate, and approve or reject (requested by the drift, "
            "performance and freshness sensors and the nightly schedule).",
        ),
        deploy=dg.define_asset_job(
            f"{spec.name}_deploy",
            selection=dg.AssetSelection.assets(key("deployment")),
            tags=tags,
            description="One step of the challenger's rollout (requested by the rollout controller).",
        ),
    )
