"""The rollout controller: a sensor that drives the challenger's rollout from live evidence.

Every tick it reads the rollout from the registry and the prediction log since the current stage
began, and asks ``core/deployment/rollout_control.judge`` what to do:

- a new challenger (approved by the gates, not yet rolling out): start its rollout (the
  ``deployment`` step smoke-tests it first);
- a challenger whose files fail the integrity check serving processes run before loading a
  model (``core/deployment/integrity``: the files changed since registration, or LightGBM cannot
  load them): roll back at once, as the service refuses it;
- a limit broken (error rate, p99 latency, collapsed scores, live AUC): roll back at once,
  through the ``<pipeline>_rollback`` job, which alerts;
- the stage's minimum requests and duration reached within every limit: advance one step;
- otherwise hold, and say what it waits for.

Each action is a run (``<pipeline>_deploy`` or ``<pipeline>_rollback``), so the UI shows every step
with its reason, and the run key (version, strategy, stage) makes a step happen once.
"""

import datetime as dt

import dagster as dg
import polars as pl

from mlplatform.core.deployment.apply import STAGE_STARTED_AT, read_state
from mlplatform.core.deployment.registry import CHALLENGER, CHAMPION
from mlplatform.core.deployment.rollout_control import judge
from mlplatform.core.monitoring.live import stage_statistics
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.tracking import integrity_problem
from mlplatform.orchestration.jobs import IN_FLIGHT, PipelineJobs
from mlplatform.orchestration.resources import MlflowTracking, PredictionLogFiles, Warehouse
from mlplatform.serving.prediction_log import read_log


def _labels(spec: PipelineSpec, warehouse: Warehouse, log: pl.DataFrame) -> pl.DataFrame | None:
    """The labels that have arrived for the event days of the logged requests."""
    store = warehouse.store()
    days = sorted(set(log["event_day"].drop_nulls().to_list()) & set(store.days(spec.name, "features")))
    return store.read_days(spec.name, "features", days) if days else None


def rollout_controller(
    spec: PipelineSpec, jobs: PipelineJobs, rollback: dg.JobDefinition
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{spec.name}_rollout_controller",
        jobs=[jobs.deploy, rollback],
        minimum_interval_seconds=spec.monitoring.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts the rollout of an approved challenger, advances it stage by stage on live "
        "evidence, and rolls it back the moment a limit is broken.",
    )
    def _controller(
        context: dg.SensorEvaluationContext,
        mlflow_tracking: MlflowTracking,
        prediction_logs: PredictionLogFiles,
        warehouse: Warehouse,
    ):
        in_flight = context.instance.get_runs(
            dg.RunsFilter(job_name=jobs.deploy.name, statuses=IN_FLIGHT), limit=1
        ) or context.instance.get_runs(dg.RunsFilter(job_name=rollback.name, statuses=IN_FLIGHT), limit=1)
        if in_flight:
            return dg.SkipReason(
                f"run {in_flight[0].run_id[:8]} ({in_flight[0].job_name}) is still in flight"
            )
        state = read_state(mlflow_tracking.client(), spec.name)
        challenger = state.aliases.get(CHALLENGER)
        if challenger is None:
            return dg.SkipReason("no challenger: nothing to roll out")
        tags = {"mlplatform/trigger": "rollout_controller", "mlplatform/version": challenger}
        if not state.in_progress:
            return dg.RunRequest(
                job_name=jobs.deploy.name,
                run_key=f"start:{challenger}",
                tags={
                    **tags,
                    "mlplatform/verdict": f"start the {spec.rollout.strategy} rollout of v{challenger}",
                },
            )
        problem = integrity_problem(spec.name, challenger)
        if problem is not None:  # the serving processes refuse it: the rollout has failed
            return dg.RunRequest(
                job_name=rollback.name,
                run_key=f"refused:{challenger}:{state.strategy}:{state.stage}",
                tags={
                    **tags,
                    "mlplatform/reason": f"v{challenger} fails its integrity check: {problem}"[:250],
                },
            )
        since = dt.datetime.fromisoformat(
            state.tags.get(STAGE_STARTED_AT, dt.datetime.now(dt.UTC).isoformat())
        )
        log = read_log(prediction_logs.folder(), spec.name, since=since)
        champion, candidate, score_spread = stage_statistics(
            log,
            state.aliases.get(CHAMPION),
            challenger,
            _labels(spec, warehouse, log) if log.height else None,
            spec.entity,
            spec.label.name,
            spec.task_def,
        )
        elapsed = (dt.datetime.now(dt.UTC) - since).total_seconds() / 60
        verdict = judge(
            state, spec.rollout, elapsed, champion, candidate, score_spread, spec.task_def.live_metric
        )
        where = f"v{challenger} {state.strategy} stage {state.stage}"
        context.log.info(f"{where}: {verdict.summary}")
        if verdict.action == "hold":
            return dg.SkipReason(f"{where}: {verdict.summary}")
        step = f"{challenger}:{state.strategy}:{state.stage}"
        if verdict.action == "rollback":
            return dg.RunRequest(
                job_name=rollback.name,
                run_key=f"rollback:{step}",
                tags={**tags, "mlplatform/reason": f"{where}: {verdict.summary}"[:250]},
            )
        return dg.RunRequest(
            job_name=jobs.deploy.name,
            run_key=f"advance:{step}",
            tags={**tags, "mlplatform/verdict": f"{where}: {verdict.summary}"[:250]},
        )

    return _controller
