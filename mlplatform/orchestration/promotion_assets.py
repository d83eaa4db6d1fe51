"""``evaluation`` (the model gates, as blocking checks) and ``candidate`` (the promotion decision).

``evaluation`` scores the version ``model`` registered for the same day (found through the Dagster
materialization, so lineage and registry agree) and the current champion on exactly the same test
rows. A failing gate stops the run before ``candidate``, so a rejected model never moves an alias;
``candidate`` sets ``challenger`` (or ``champion`` when there is none) only when every gate passed.
"""

import datetime as dt
import json
import time

import dagster as dg
import polars as pl
from mlflow.entities import Metric

from mlplatform.core.deployment.registry import (
    CHAMPION,
    alias_version,
    aliases,
    set_alias,
    set_version_tags,
    version_tag,
)
from mlplatform.core.evaluation.gates import evaluate_all, rows_fingerprint
from mlplatform.core.evaluation.promotion import decide, metric_reasons
from mlplatform.core.evaluation.report import evaluation_plots
from mlplatform.core.evaluation.slices import joined_columns, slice_frame
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.fit import TimeSplit
from mlplatform.core.training.tracking import load_version
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.checks import gate_metadata
from mlplatform.orchestration.metadata import ReportConfig, latest_metadata, markdown_table
from mlplatform.orchestration.model_assets import read_window, registered_version, window_dep
from mlplatform.orchestration.resources import MlflowTracking, Warehouse

MODEL_GATES = {
    "metric_floors": "Each metric meets the spec's floor.",
    "beats_champion": "No worse than the champion on the primary metric (same test rows) by more than "
    "the allowed regression; with no champion the floors alone decide.",
    "slice_disparity": "The largest gap of each slice metric (AUC and true-positive rate, accuracy, or "
    "error and bias, by task) between large enough slices is within the spec's limit.",
    "latency": "p99 of single-record predictions within the SLA.",
    "determinism": "The same rows scored twice give the same predictions.",
    "robustness": "Missing numerics and unseen categories give finite predictions, no exception.",
    "training_converged": "Validation loss improved on the first iteration; no NaN or infinite predictions.",
}


def _check_result(gate: GateResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=gate.name,
        passed=gate.passed,
        metadata=gate_metadata(gate),
        severity=dg.AssetCheckSeverity.ERROR if gate.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=gate.summary,
    )


def _test_slices(
    spec: PipelineSpec, warehouse: Warehouse, days: list[str], test: pl.DataFrame
) -> pl.DataFrame:
    """The slice columns of the test rows, joining the ones that are not features (evaluation only)."""
    store = warehouse.store()
    joined = joined_columns(spec)
    raw = read_window(spec, warehouse, days, "test", "raw") if joined else None

    def reference(name: str) -> pl.DataFrame:
        return (
            store.read_days(spec.name, name, days)
            if spec.references[name].partitioned
            else store.read(spec.name, name)
        )

    return slice_frame(spec, test, raw, reference)


def evaluation_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "evaluation"])
    model_key = dg.AssetKey([spec.name, "model"])
    # Slice columns that are not features are read from the raw rows (and references) of the test days.
    joined = joined_columns(spec)
    tables = {"raw", *(c.partition(".")[0] for c in joined if "." in c)} if joined else set()
    slice_deps = [window_dep(spec, t) for t in sorted(tables) if t == "raw" or spec.references[t].partitioned]
    slice_deps += [
        dg.AssetDep(dg.AssetKey([spec.name, t]))
        for t in sorted(tables)
        if t != "raw" and not spec.references[t].partitioned
    ]

    @dg.asset(
        key=key,
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"mlflow"},
        deps=[model_key, window_dep(spec), *slice_deps],
        description=f"The day's model and the champion on the {spec.model.test_days} held-out test days; "
        "every model gate as a blocking check.",
        check_specs=[
            dg.AssetCheckSpec(n, asset=key, blocking=True, partitions_def=partitions, description=t)
            for n, t in MODEL_GATES.items()
        ],
    )
    def _evaluation(
        context: dg.AssetExecutionContext,
        config: ReportConfig,
        warehouse: Warehouse,
        mlflow_tracking: MlflowTracking,
        alerts: AlertNotifier,
    ):
        as_of = context.partition_key
        split = TimeSplit.as_of(dt.date.fromisoformat(as_of), spec.model)
        test = read_window(spec, warehouse, split.test, "test")
        made = registered_version(context, model_key, as_of)
        name, version = str(made["model_name"]), str(made["model_version"])
        client = mlflow_tracking.client()
        model = load_version(name, version)
        champion_version = alias_version(client, name, CHAMPION)
        champion = None
        if champion_version is not None and champion_version != version:
            threshold = float(version_tag(client, name, champion_version, "threshold") or 0.5)
            champion = (champion_version, load_version(name, champion_version), threshold)
        slices = _test_slices(spec, warehouse, split.test, test)
        task = spec.task_def
        metrics, champion_metrics, gates, scores, champion_scores = evaluate_all(
            model,
            test,
            spec.label.name,
            float(made["threshold"]),
            spec.gates,
            champion,
            bool(made["converged"]),
            int(made["best_iteration"]),
            task,
            slices,
        )
        run_id = str(made["mlflow_run_id"])
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"test_{k}", v, now, 0) for k, v in metrics.items()])
        set_version_tags(
            client, name, version, {f"gate.{g.name}": "passed" if g.passed else "failed" for g in gates}
        )
        failed = [g for g in gates if g.blocks]
        if failed:
            alerts.send(
                "gate_failed",
                spec.name,
                f"v{version} as of {as_of} rejected by {', '.join(g.name for g in failed)}: {failed[0].summary}",
                {"version": version, "as_of": as_of, "failed": {g.name: g.summary for g in failed}},
                log=context.log,
            )
        y = test[spec.label.name].to_numpy()
        predictions = {f"v{version} (new)": scores}
        if champion is not None and champion_scores is not None:
            predictions[f"v{champion[0]} (champion)"] = champion_scores
        importance = pl.DataFrame(
            {
                "feature": model.booster.feature_name(),
                "gain": model.booster.feature_importance("gain").astype(float),
            }
        )
        plots = (
            evaluation_plots(task, y, predictions, importance, slices, spec.gates.slice_columns)
            if config.plots
            else []
        )
        reasons = metric_reasons(metrics, champion_metrics, spec.gates, task)
        slice_evidence = next(g for g in gates if g.name == "slice_disparity").evidence
        fingerprint = rows_fingerprint(test, [*spec.entity])
        return dg.MaterializeResult(
            metadata={
                **{f"test_{k}": v for k, v in metrics.items()},
                **({f"champion_{k}": v for k, v in champion_metrics.items()} if champion_metrics else {}),
                "model_version": version,
                "champion_version": champion[0] if champion else "none (bootstrap)",
                "test_days": f"{split.test[0]}..{split.test[-1]}",
                "test_rows_fingerprint": fingerprint,
                "champion_rows_fingerprint": fingerprint if champion else "none",
                "gates": dg.MetadataValue.json({g.name: g.passed for g in gates}),
                "reasons": dg.MetadataValue.json(reasons),
                "gate_summary": markdown_table(
                    pl.DataFrame([{"gate": g.name, "passed": g.passed, "summary": g.summary} for g in gates])
                ),
                "slices": markdown_table(
                    slice_evidence if slice_evidence is not None else pl.DataFrame(), max_rows=40
                ),
                "report": dg.MetadataValue.md("\n\n".join(plots) if config.plots else "plots turned off"),
            },
            check_results=[_check_result(g) for g in gates],
        )

    return _evaluation


def candidate_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "candidate"])
    evaluation_key = dg.AssetKey([spec.name, "evaluation"])

    @dg.asset(
        key=key,
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"mlflow"},
        deps=[evaluation_key],
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(days=spec.monitoring.model_max_age_days)
        ),
        description="The promotion decision with its reasons; sets the alias 'challenger' (or 'champion' "
        "when there is none) only when every gate passed.",
    )
    def _candidate(context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking):
        day = context.partition_key
        evaluation = latest_metadata(context, evaluation_key, day)
        version = str(evaluation["model_version"])
        client = mlflow_tracking.client()
        champion_version = alias_version(client, spec.name, CHAMPION)
        reasons = evaluation["reasons"]
        decision = decide(evaluation["gates"], reasons, champion_version)
        before = aliases(client, spec.name)
        if decision.alias:
            set_alias(client, spec.name, decision.alias, version)
        set_version_tags(
            client,
            spec.name,
            version,
            {"decision": decision.label, "decision_reasons": json.dumps(reasons, default=str)[:4900]},
        )
        context.log.info(
            f"{spec.name} v{version}: {decision.label}"
            + (f", alias {decision.alias}" if decision.alias else "")
        )
        return dg.MaterializeResult(
            metadata={
                "decision": decision.label,
                "model_version": version,
                "alias_set": decision.alias or "none",
                "failed_gates": ", ".join(decision.failed_gates) or "none",
                "aliases_before": dg.MetadataValue.json(before),
                "aliases_after": dg.MetadataValue.json(aliases(client, spec.name)),
                "reasons": markdown_table(pl.DataFrame(reasons)) if reasons else "no metrics",
            }
        )

    return _candidate
