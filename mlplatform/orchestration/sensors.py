"""A pipeline's sensors and schedule: new landing files, drift, live performance, freshness, nightly.

Each sensor keeps a cursor, so a restart neither repeats nor misses work, and says why when it
does nothing (``SkipReason``). The decisions themselves are plain Python in ``core/monitoring/triggers.py``;
this module reads the landing zone, the Dagster instance and the registry, and turns decisions
into run requests for the jobs in ``jobs.py``. Retraining requests go through the gated path
(``<pipeline>_retrain``), so the champion alias moves only when every gate passes; the drift and
performance triggers wait ``monitoring.retrain_cooldown_days`` after the newest trained model.
"""

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import dagster as dg

from mlplatform.core.data.landing_cursor import LandingCursor, scan
from mlplatform.core.deployment.registry import newest_as_of
from mlplatform.core.monitoring.triggers import (
    RetrainRequest,
    consecutive_bad_days,
    day_pattern,
    describe_drift,
    is_bad_day,
    retrain_request,
)
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.jobs import IN_FLIGHT, PipelineJobs
from mlplatform.orchestration.resources import LandingZone, MlflowTracking, Warehouse

MAX_DAYS_PER_TICK = 31


def _key(spec: PipelineSpec, name: str) -> dg.AssetKey:
    return dg.AssetKey([spec.name, name])


def _latest_timestamps(instance: dg.DagsterInstance, key: dg.AssetKey, days: list[str]) -> dict[str, float]:
    """Day -> time of the partition's newest materialization, for the days that have one."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=days), limit=len(days) * 4
    ).records
    newest: dict[str, float] = {}
    for record in records:
        if record.partition_key is not None:
            newest.setdefault(record.partition_key, record.timestamp)
    return newest


def landing_sensor(spec: PipelineSpec, jobs: PipelineJobs) -> dg.SensorDefinition:
    tables = {"raw": spec.source.path, **{n: r.path for n, r in spec.references.items() if r.partitioned}}
    volumes = {
        "raw": spec.source.volume,
        **{n: r.volume for n, r in spec.references.items() if r.partitioned},
    }
    first, end = spec.source.start_date.isoformat(), spec.source.end_date

    @dg.sensor(
        name=f"{spec.name}_landing",
        job=jobs.ingest,
        minimum_interval_seconds=spec.monitoring.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A new daily landing file requests the ingestion of its partition (once its "
        "done marker is there, where the table declares one); a file that changes is ingested "
        "again; each version of a file triggers once.",
    )
    def _landing(context: dg.SensorEvaluationContext, landing: LandingZone):
        folder = landing.folder(spec.name)
        present: dict[str, tuple[int, int]] = {}
        located: dict[str, tuple[str, str, float]] = {}  # path -> (table, day, mtime)
        for table, pattern in tables.items():
            regex = day_pattern(pattern)
            for path in folder.glob(pattern.replace("{day}", "*")):
                relative = path.relative_to(folder).as_posix()
                match = regex.search(relative)
                if match is None or not (first <= match.group(1) < (end.isoformat() if end else "9999")):
                    continue
                stat = path.stat()
                written = stat.st_mtime_ns
                if (marker := volumes[table].done_marker) is not None:
                    # A delivery is complete when its done marker is there: until then the file
                    # is not a candidate (ingesting it would only block on the missing marker),
                    # and a marker written later makes it one.
                    done = folder / marker.format(day=match.group(1))
                    if not done.exists():
                        continue
                    written = max(written, done.stat().st_mtime_ns)
                present[relative] = (written, stat.st_size)
                located[relative] = (table, match.group(1), written / 1e9)
        found = scan(LandingCursor.decode(context.cursor), present)
        if found.unchanged:
            return dg.SensorResult(
                skip_reason=f"no new or changed file among the {len(present)} in {folder}",
                cursor=found.cursor.encode(),
            )
        # A candidate may already be ingested (a cursor reset, a backfill from the UI, a file moved
        # in with an old time): it needs no run when its partition was stored after it was written.
        days_by_table = defaultdict(list)
        for name in found.candidates:
            days_by_table[located[name][0]].append(located[name][1])
        ingested = {
            t: _latest_timestamps(context.instance, _key(spec, t), days) for t, days in days_by_table.items()
        }
        by_day: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
        for name in found.candidates:
            table, day, mtime = located[name]
            if ingested[table].get(day, 0.0) <= mtime:
                by_day[day][name] = present[name]
        requests = []
        for day in sorted(by_day)[:MAX_DAYS_PER_TICK]:
            files = by_day[day]
            digest = hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()[:12]
            requests.append(
                dg.RunRequest(
                    run_key=f"{day}:{digest}",
                    partition_key=day,
                    # The day's features are built in the same run, so the run stores the new
                    # delivery and its features together or neither (see daily_data).
                    asset_selection=sorted(
                        {_key(spec, located[p][0]) for p in files} | {_key(spec, "features")}, key=str
                    ),
                    tags={"mlplatform/trigger": "landing", "mlplatform/files": ",".join(sorted(files))[:250]},
                )
            )
        if len(by_day) > MAX_DAYS_PER_TICK:  # the rest on the next ticks: the cursor stays put
            return dg.SensorResult(run_requests=requests, cursor=context.cursor)
        if not requests:
            return dg.SensorResult(
                skip_reason=f"{len(found.candidates)} new or changed file(s) among the {len(present)} in "
                f"{folder}, all ingested after they were written",
                cursor=found.cursor.encode(),
            )
        return dg.SensorResult(run_requests=requests, cursor=found.cursor.encode())

    return _landing


def _newest_as_of(
    context: dg.SensorEvaluationContext, spec: PipelineSpec, mlflow_tracking: MlflowTracking
) -> str | None:
    """The newest as-of day trained or being trained: the registry's, or a retraining in flight."""
    days = [newest_as_of(mlflow_tracking.client(), spec.name)]
    for run in context.instance.get_runs(dg.RunsFilter(job_name=f"{spec.name}_retrain", statuses=IN_FLIGHT)):
        days.append(run.tags.get("dagster/partition"))
    known = [d for d in days if d]
    return max(known) if known else None


def _retrain_run(
    spec: PipelineSpec, decision: RetrainRequest, trigger: str, tags: dict[str, str]
) -> dg.RunRequest | None:
    """The gated retraining as of the decided day, or None when that day is past the partitions."""
    as_of = decision.as_of
    if as_of is None or (spec.source.end_date is not None and as_of >= spec.source.end_date.isoformat()):
        return None
    return dg.RunRequest(
        run_key=f"{trigger}:{as_of}",
        partition_key=as_of,
        tags={"mlplatform/trigger": trigger, "mlplatform/as_of": as_of, **tags},
    )


@dataclass(frozen=True)
class Finding:
    """What one measurement says when it asks for a retraining."""

    summary: str  # the alert's first half; "retraining as of D" follows
    tags: dict[str, str]
    details: dict


def _retrain_on_measurements(
    context: dg.SensorEvaluationContext,
    spec: PipelineSpec,
    key: dg.AssetKey,
    trigger: str,
    assess: Callable[[dg.EventLogRecord], Finding | str],
    mlflow_tracking: MlflowTracking,
    alerts: AlertNotifier,
) -> dg.SensorResult | dg.SkipReason:
    """For each materialization of ``key`` since the cursor (one per measured day), in order:
    ``assess`` it (a finding, or a note saying why not), and request a gated retraining as of the
    next day unless the cooldown holds it back; one retraining per cooldown, alerting each time."""
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=int(context.cursor or 0)),
        limit=100,
        ascending=True,
    ).records
    if not records:
        return dg.SkipReason(f"no new {key.path[-1]} measurement")
    newest = _newest_as_of(context, spec, mlflow_tracking)
    requests, notes = [], []
    for record in records:
        day = record.partition_key
        finding = assess(record) if day is not None else "not a daily measurement"
        if isinstance(finding, str) or day is None:
            notes.append(f"{day}: {finding}")
            continue
        decision = retrain_request(trigger, day, newest, spec.monitoring.retrain_cooldown_days)
        request = _retrain_run(spec, decision, trigger, finding.tags)
        if request is None:
            notes.append(decision.reason)
            continue
        alerts.send(
            trigger,
            spec.name,
            f"{finding.summary}; retraining as of {decision.as_of}",
            finding.details,
            log=context.log,
        )
        requests.append(request)
        newest = decision.as_of
    cursor = str(records[-1].storage_id)
    if not requests:
        return dg.SensorResult(skip_reason="; ".join(notes[-5:]), cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def drift_sensor(spec: PipelineSpec, jobs: PipelineJobs) -> dg.SensorDefinition:
    def assess(record: dg.EventLogRecord) -> Finding | str:
        materialization = record.asset_materialization
        drifted = materialization.metadata.get("drifted_features") if materialization else None
        values: dict[str, float] = drifted.value if drifted is not None else {}  # type: ignore[assignment]
        if not values:
            return "no drift"
        return Finding(
            f"{len(values)} feature(s) drifted on {record.partition_key} ({describe_drift(values)})",
            {"mlplatform/drifted": describe_drift(values)},
            {"day": record.partition_key, "drifted": values},
        )

    @dg.sensor(
        name=f"{spec.name}_drift",
        job=jobs.retrain,
        minimum_interval_seconds=spec.monitoring.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Drift above PSI {spec.monitoring.psi_threshold} on a new day requests a retraining "
        "through the gated path (at most one per cooldown).",
    )
    def _drift(context: dg.SensorEvaluationContext, mlflow_tracking: MlflowTracking, alerts: AlertNotifier):
        return _retrain_on_measurements(
            context, spec, _key(spec, "drift"), "drift", assess, mlflow_tracking, alerts
        )

    return _drift


def _number(metadata: Mapping[str, dg.MetadataValue], name: str) -> float | None:
    value = metadata.get(name)
    return float(value.value) if value is not None and isinstance(value.value, int | float) else None


def performance_sensor(spec: PipelineSpec, jobs: PipelineJobs) -> dg.SensorDefinition:
    live_key = _key(spec, "live_performance")
    floor, days_needed = spec.monitoring.performance_floor, spec.monitoring.performance_days
    metric = spec.task_def.live_metric

    @dg.sensor(
        name=f"{spec.name}_performance",
        job=jobs.retrain,
        minimum_interval_seconds=spec.monitoring.sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Live {metric} below {floor}, or {spec.monitoring.max_live_drop} below the served "
        f"model's test {metric}, on {days_needed} consecutive days requests a retraining.",
    )
    def _performance(
        context: dg.SensorEvaluationContext, mlflow_tracking: MlflowTracking, alerts: AlertNotifier
    ):
        def assess(record: dg.EventLogRecord) -> Finding | str:
            day = dt.date.fromisoformat(str(record.partition_key))
            window = [(day - dt.timedelta(days=n)).isoformat() for n in range(days_needed)]
            history = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=live_key, asset_partitions=window), limit=days_needed * 4
            ).records
            auc: dict[str, tuple[float | None, float | None]] = {}
            for past in history:
                if past.partition_key is not None and past.asset_materialization is not None:
                    measured = past.asset_materialization.metadata
                    auc.setdefault(
                        past.partition_key,
                        (_number(measured, "served_metric"), _number(measured, "expected_metric")),
                    )
            bad = consecutive_bad_days(
                sorted(
                    (d, is_bad_day(a, floor, e, spec.monitoring.max_live_drop)) for d, (a, e) in auc.items()
                )
            )
            if len(bad) < days_needed:
                return f"{len(bad)} of {days_needed} consecutive bad days"
            return Finding(
                f"live {metric} below {floor}, or {spec.monitoring.max_live_drop} below the model's test "
                f"{metric}, on {', '.join(bad)}",
                {"mlplatform/bad_days": ",".join(bad)},
                {"days": bad, metric: {d: auc[d][0] for d in bad}, "expected": {d: auc[d][1] for d in bad}},
            )

        return _retrain_on_measurements(
            context, spec, live_key, "performance", assess, mlflow_tracking, alerts
        )

    return _performance


def freshness_sensor(spec: PipelineSpec, jobs: PipelineJobs) -> dg.SensorDefinition:
    raw_key, model_key = _key(spec, "raw"), _key(spec, "candidate")

    @dg.sensor(
        name=f"{spec.name}_freshness",
        job=jobs.retrain,
        minimum_interval_seconds=max(spec.monitoring.sensor_interval_seconds, 60),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Alerts when raw data or the champion model breaks its freshness policy, and asks a "
        "stale model to be retrained on the newest data.",
    )
    def _freshness(
        context: dg.SensorEvaluationContext,
        mlflow_tracking: MlflowTracking,
        warehouse: Warehouse,
        alerts: AlertNotifier,
    ):
        alerted: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        states = context.instance.get_freshness_state_records([raw_key, model_key])
        now = {key.to_user_string(): str(record.freshness_state.value) for key, record in states.items()}
        stale = {k: s for k, s in now.items() if s in ("WARN", "FAIL") and alerted.get(k) != s}
        cursor = json.dumps(now)
        if not stale:
            return dg.SensorResult(skip_reason=f"freshness: {now or 'not evaluated yet'}", cursor=cursor)
        requests = []
        for key, state in stale.items():
            what = "raw data" if key == raw_key.to_user_string() else "the champion model"
            alerts.send(
                "stale_data" if what == "raw data" else "stale_model",
                spec.name,
                f"{what} is {state}",
                log=context.log,
            )
        days = (
            warehouse.store().days(spec.name, "features")
            if stale.get(model_key.to_user_string()) == "FAIL"
            else []
        )
        if days:
            decision = retrain_request(
                "stale model", days[-1], _newest_as_of(context, spec, mlflow_tracking), 1
            )
            request = _retrain_run(spec, decision, "stale_model", {})
            requests += [request] if request is not None else []
        if not requests:
            alerted_now = ", ".join(f"{k} {s}" for k, s in stale.items())
            return dg.SensorResult(skip_reason=f"alerted: {alerted_now}; no retraining asked", cursor=cursor)
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    return _freshness


def nightly_schedule(spec: PipelineSpec, jobs: PipelineJobs) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{spec.name}_nightly",
        cron_schedule=spec.monitoring.nightly_cron,
        job=jobs.retrain,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="The fallback trigger: retrain on the newest data unless a model already covers it.",
    )
    def _nightly(
        context: dg.ScheduleEvaluationContext, mlflow_tracking: MlflowTracking, warehouse: Warehouse
    ):
        days = warehouse.store().days(spec.name, "features")
        if not days:
            return dg.SkipReason(f"{spec.name}/features has no partition yet")
        decision = retrain_request("nightly", days[-1], newest_as_of(mlflow_tracking.client(), spec.name), 1)
        request = _retrain_run(spec, decision, "schedule", {})
        return request if request is not None else dg.SkipReason(decision.reason)

    return _nightly
