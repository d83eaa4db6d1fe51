"""Monitoring assets: ``prediction_log``, ``live_performance`` and ``drift``, one partition per day.

A day's ``features`` partition is also the day's labels arriving (the outcome is in the landing
file, delivered after the day), so all three follow ``features`` by declarative automation:
``drift`` compares the day's features with the champion's training window, ``prediction_log``
loads what the service answered for that day, and ``live_performance`` joins the two. The drift
and performance sensors read their materializations to decide on retraining.
"""

import datetime as dt
import math

import dagster as dg
import polars as pl
from mlflow import MlflowClient

from mlplatform.core.deployment.registry import CHAMPION, alias_version, version_tag
from mlplatform.core.evaluation.report import drift_markdown
from mlplatform.core.monitoring.drift import drift_table, reference_profiles
from mlplatform.core.monitoring.late_logs import files_digest
from mlplatform.core.monitoring.live import (
    join_labels,
    live_metric,
    report_schema,
    scored_rows,
    two_proportion_z_test,
    variant_report,
)
from mlplatform.core.monitoring.triggers import drifted_features, is_bad_day
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.fit import TimeSplit
from mlplatform.orchestration.automation import every_partition_eager
from mlplatform.orchestration.metadata import DriftConfig, markdown_table
from mlplatform.orchestration.resources import MlflowTracking, PredictionLogFiles, Warehouse
from mlplatform.serving.prediction_log import log_files, read_log

LOG_FILES_DIGEST = "log_files_digest"


def prediction_log_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    features_key = dg.AssetKey([spec.name, "features"])

    @dg.asset(
        key=[spec.name, "prediction_log"],
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"parquet"},
        deps=[dg.AssetDep(features_key)],
        automation_condition=every_partition_eager(),
        description="Every prediction the service logged for that event day (answers and shadow scores), "
        "one row per request and variant, loaded into the warehouse once the day's labels arrived.",
    )
    def _prediction_log(
        context: dg.AssetExecutionContext, warehouse: Warehouse, prediction_logs: PredictionLogFiles
    ):
        day = context.partition_key
        paths = log_files(prediction_logs.folder(), spec.name, day).get(day, [])
        log = read_log(prediction_logs.folder(), spec.name, day, paths=paths).unique(
            ["request_id", "variant"], keep="last", maintain_order=True
        )
        warehouse.store().write(spec.name, "prediction_log", log, day)
        counts = log.group_by("variant", "model_version").len().sort("variant", "model_version")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": log.height,
                "by_variant": markdown_table(counts),
                "log_files": len(paths),
                # What the late-log sensor compares with the day's files now (core/monitoring/late_logs.py).
                LOG_FILES_DIGEST: files_digest(p.rsplit("/", 1)[-1] for p in paths),
            }
        )

    return _prediction_log


def _ab_test(report: pl.DataFrame) -> dict:
    """The two-proportion z-test of challenger against champion, when both answered (a classifier's)."""
    by_variant = {r["variant"]: r for r in report.iter_rows(named=True)}
    if not {"champion", "challenger"} <= by_variant.keys() or "correct" not in report.columns:
        return {}
    a, b = by_variant["challenger"], by_variant["champion"]
    z, p = two_proportion_z_test(a["correct"], a["rows"], b["correct"], b["rows"])
    return {"z": z, "p_value": p, "accuracy_difference": a["accuracy"] - b["accuracy"]}


def _expected(client: MlflowClient, model_name: str, served: pl.DataFrame, metric: str) -> float | None:
    """The test figure of the live metric (from its evaluation) of the version that answered most of
    the day: what the performance sensor holds the live figure against. None for a version that was
    never evaluated."""
    if served.height == 0:
        return None
    version = served["model_version"].mode().sort()[0]
    run_id = client.get_model_version(model_name, str(version)).run_id
    return client.get_run(run_id).data.metrics.get(f"test_{metric}") if run_id else None


def live_performance_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "live_performance"])
    floor = spec.monitoring.performance_floor
    task = spec.task_def
    metric = task.live_metric
    floor_text = f"at least {floor}" if floor is not None else "not below the model's test figure"

    @dg.asset(
        key=key,
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"polars"},
        deps=[dg.AssetKey([spec.name, "prediction_log"]), dg.AssetKey([spec.name, "features"])],
        automation_condition=every_partition_eager(),
        description=f"The day's answered predictions joined with the labels that arrived later: live {metric} "
        "per variant and model version, and, for a classifier, an A/B z-test of challenger against champion.",
        check_specs=[
            dg.AssetCheckSpec(
                "performance_floor",
                asset=key,
                partitions_def=partitions,
                description=f"The live {metric} of what was served is {floor_text} by more than "
                f"{spec.monitoring.max_live_drop} (warns).",
            )
        ],
    )
    def _live_performance(
        context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow_tracking: MlflowTracking
    ):
        day = context.partition_key
        store = warehouse.store()
        if not store.exists(spec.name, "features", day):
            raise dg.Failure(f"the labels of {day} have not arrived: {spec.name}/features has no {day}")
        log = (
            store.read(spec.name, "prediction_log", day)
            if store.exists(spec.name, "prediction_log", day)
            else None
        )
        labels = store.read(spec.name, "features", day)
        failed_over = (
            int((log["status"] == "error").sum()) if log is not None and "status" in log.columns else 0
        )
        joined = (
            join_labels(scored_rows(log), labels, spec.entity, spec.label.name)
            if log is not None and log.height
            else None
        )
        if joined is None or joined.height == 0:
            store.write(spec.name, "live_performance", pl.DataFrame(schema=report_schema(task)), day)
            yield dg.MaterializeResult(
                metadata={"labelled_predictions": 0, "live_metric": metric, "served_metric": math.nan},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="performance_floor",
                        passed=True,
                        description="no labelled predictions: not judged",
                    )
                ],
            )
            return
        client = mlflow_tracking.client()
        thresholds = {
            str(v): float(version_tag(client, spec.name, str(v), "threshold") or 0.5)
            for v in joined["model_version"].unique()
        }
        report = variant_report(joined, spec.label.name, thresholds, task)
        store.write(spec.name, "live_performance", report, day)
        served = joined.filter(pl.col("variant") != "shadow")
        value = (
            live_metric(task, served[spec.label.name], served["prediction"]) if served.height else math.nan
        )
        expected = _expected(client, spec.name, served, metric)
        judged = served.height >= spec.rollout.min_labelled and not math.isnan(value)
        bad = is_bad_day(value, floor, expected, spec.monitoring.max_live_drop)
        floor_check = dg.AssetCheckResult(
            check_name="performance_floor",
            passed=not judged or not bad,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                f"served_{metric}": value,
                "floor": floor if floor is not None else math.nan,
                "expected": expected if expected is not None else math.nan,
                "labelled": served.height,
            },
            description=f"served {metric} {value:.3f} on {served.height} labelled predictions (floor "
            f"{floor}, test figure {expected if expected is not None else math.nan:.3f}, allowed drop "
            f"{spec.monitoring.max_live_drop})"
            if judged
            else f"{served.height} labelled predictions: too few to judge",
        )
        yield dg.MaterializeResult(
            metadata={
                "labelled_predictions": served.height,
                "labelled_shadow_scores": joined.height - served.height,
                "challenger_failures_answered_by_the_champion": failed_over,
                "live_metric": metric,
                "served_metric": value,
                "expected_metric": expected if expected is not None else math.nan,
                "variants": markdown_table(report),
                "by_variant": dg.MetadataValue.json(report.to_dicts()),
                **_ab_test(report),
            },
            check_results=[floor_check],
        )

    return _live_performance


def drift_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "drift"])
    triggers = spec.monitoring.drift_features or spec.features.columns
    threshold = spec.monitoring.psi_threshold

    @dg.asset(
        key=key,
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"polars"},
        deps=[dg.AssetKey([spec.name, "features"])],
        automation_condition=every_partition_eager(),
        description="PSI of every feature of the day against the champion's training window (numeric binned "
        "by its deciles, categorical by category, missing as its own bin) and a KS test for numeric "
        f"features; drift in {', '.join(triggers)} is what asks for a retraining.",
        check_specs=[
            dg.AssetCheckSpec(
                "drift_within_threshold",
                asset=key,
                partitions_def=partitions,
                description=f"No drift feature ({', '.join(triggers)}) has a PSI above {threshold} (warns; "
                "the drift sensor decides on retraining).",
            )
        ],
    )
    def _drift(
        context: dg.AssetExecutionContext,
        config: DriftConfig,
        warehouse: Warehouse,
        mlflow_tracking: MlflowTracking,
    ):
        day = context.partition_key
        client = mlflow_tracking.client()
        champion = alias_version(client, spec.name, CHAMPION)
        if champion is None:
            yield dg.MaterializeResult(
                metadata={"champion_version": "none", "drifted_features": dg.MetadataValue.json({})},
                check_results=[
                    dg.AssetCheckResult(
                        check_name="drift_within_threshold",
                        passed=True,
                        description="no champion: nothing to compare",
                    )
                ],
            )
            return
        as_of = version_tag(client, spec.name, champion, "as_of")
        if as_of is None:
            raise dg.Failure(f"{spec.name} v{champion} has no as_of tag: its training window is unknown")
        window = TimeSplit.as_of(dt.date.fromisoformat(as_of), spec.model).train
        store = warehouse.store()
        reference = store.read_days(spec.name, "features", window)
        current = store.read(spec.name, "features", day)
        profiles = reference_profiles(reference, spec.features.numeric, spec.features.categorical)
        table = drift_table(profiles, current, ks=config.ks)
        store.write(spec.name, "drift", table, day)
        judged = current.height >= spec.monitoring.drift_min_rows
        watched = table.filter(pl.col("feature").is_in(triggers)).to_dicts()
        drifted = drifted_features(watched, threshold) if judged else {}
        drift_check = dg.AssetCheckResult(
            check_name="drift_within_threshold",
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "drifted_features": dg.MetadataValue.json(drifted),
                "evidence": markdown_table(table.filter(pl.col("feature").is_in(list(drifted)))),
            },
            description=(
                f"{len(drifted)} feature(s) above PSI {threshold}: " + ", ".join(drifted)
                if drifted
                else f"every feature within PSI {threshold}"
                if judged
                else f"{current.height} rows: too few to judge"
            ),
        )
        yield dg.MaterializeResult(
            metadata={
                "champion_version": champion,
                "reference_window": f"{window[0]}..{window[-1]} ({reference.height} rows)",
                "rows": current.height,
                "max_psi": float(table.select(pl.col("psi").max()).item() or 0.0),
                "drifted_features": dg.MetadataValue.json(drifted),
                "drift": markdown_table(table, max_rows=40),
                "distributions": dg.MetadataValue.md(
                    drift_markdown(profiles, current, table) if config.plots else "plots turned off"
                ),
            },
            check_results=[drift_check],
        )

    return _drift
