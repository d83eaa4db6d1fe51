"""Late prediction-log files rebuild their day: a sensor and the job it launches.

A day's ``prediction_log`` is built when its labels arrive (declarative automation follows
``features``). Answers logged for the day after that land in new files; this sensor sees them and
rebuilds the day's ``prediction_log`` and ``live_performance`` in one run, so the warehouse and the
live metrics (and the performance trigger that reads them) hold every answer. Which days are stale
is plain Python (``core/monitoring/late_logs.py``); the cursor is the newest log file seen.
"""

import json

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from mlplatform.core.monitoring.late_logs import recent_days, stale_days
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.monitoring_assets import LOG_FILES_DIGEST
from mlplatform.orchestration.resources import PredictionLogFiles
from mlplatform.serving.prediction_log import log_files

REBUILT = ("prediction_log", "live_performance")


def late_log_job(spec: PipelineSpec) -> UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        f"{spec.name}_late_log",
        selection=dg.AssetSelection.assets(*[dg.AssetKey([spec.name, n]) for n in REBUILT]),
        tags={"mlplatform/pipeline": spec.name},
        description="Rebuild a day's prediction log and live performance from every log file it has now "
        "(requested by the late-log sensor when files arrive after the day was built).",
    )


def _built_digests(instance: dg.DagsterInstance, key: dg.AssetKey, days: list[str]) -> dict[str, str | None]:
    """Day -> the file digest its newest ``prediction_log`` materialization recorded, for built days."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=days), limit=len(days) * 4
    ).records
    built: dict[str, str | None] = {}
    for record in records:  # newest first
        if record.partition_key is None or record.partition_key in built:
            continue
        materialization = record.asset_materialization
        digest = materialization.metadata.get(LOG_FILES_DIGEST) if materialization else None
        built[record.partition_key] = str(digest.value) if digest is not None else None
    return built


def late_log_sensor(spec: PipelineSpec, job: UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    key = dg.AssetKey([spec.name, "prediction_log"])

    @dg.sensor(
        name=f"{spec.name}_late_log",
        job=job,
        minimum_interval_seconds=spec.monitoring.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Prediction-log files that arrive for a day whose prediction_log is already built "
        "request a rebuild of that day's prediction_log and live_performance.",
    )
    def _late_log(context: dg.SensorEvaluationContext, prediction_logs: PredictionLogFiles):
        paths_by_day = log_files(prediction_logs.folder(), spec.name)
        names_by_day = {day: [p.rsplit("/", 1)[-1] for p in paths] for day, paths in paths_by_day.items()}
        newest = max((n for names in names_by_day.values() for n in names), default=None)
        seen = json.loads(context.cursor)["newest"] if context.cursor else None
        cursor = json.dumps({"newest": newest or seen})
        days = sorted(recent_days(names_by_day, seen))
        if not days:
            return dg.SensorResult(
                skip_reason=f"no prediction-log file flushed recently ({sum(map(len, names_by_day.values()))} "
                f"files for {len(names_by_day)} days)",
                cursor=cursor,
            )
        stale = stale_days(names_by_day, days, _built_digests(context.instance, key, days))
        if not stale:
            return dg.SensorResult(
                skip_reason=f"log files flushed recently for {len(days)} day(s) ({days[0]}..{days[-1]}): each "
                "is built from every file it has, or not built yet (it is when its labels arrive)",
                cursor=cursor,
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{day}:{digest}",
                    partition_key=day,
                    tags={
                        "mlplatform/trigger": "late_log",
                        "mlplatform/log_files": str(len(names_by_day[day])),
                    },
                )
                for day, digest in stale.items()
            ],
            cursor=cursor,
        )

    return _late_log
