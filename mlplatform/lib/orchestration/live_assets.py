"""``prediction_log`` (what the service answered, in the warehouse) and ``ab_report`` (per variant,
the live metric from labels that arrived later, with a significance test)."""

import dagster as dg
import polars as pl

from mlplatform.lib.live import join_labels, two_proportion_z_test, variant_report
from mlplatform.lib.orchestration.metadata import markdown_table
from mlplatform.lib.orchestration.resources import MlflowTracking, PredictionLogFiles, Warehouse
from mlplatform.lib.registry import version_tag
from mlplatform.lib.spec import PipelineSpec
from mlplatform.serving.prediction_log import read_log


def prediction_log_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=[spec.name, "prediction_log"],
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"parquet"},
        description="Every prediction the service logged that day (answers and shadow scores), one row "
        "per request and variant, loaded into the warehouse.",
    )
    def _prediction_log(
        context: dg.AssetExecutionContext, warehouse: Warehouse, prediction_logs: PredictionLogFiles
    ):
        day = context.partition_key
        log = read_log(prediction_logs.folder(), spec.name, day).unique(
            ["request_id", "variant"], keep="last", maintain_order=True
        )
        warehouse.store().write(spec.name, "prediction_log", log, day)
        counts = log.group_by("variant", "model_version").len().sort("variant", "model_version")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": log.height, "by_variant": markdown_table(counts)}
        )

    return _prediction_log


def ab_report_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=[spec.name, "ab_report"],
        partitions_def=partitions,
        group_name=spec.name,
        kinds={"polars"},
        deps=[dg.AssetKey([spec.name, "prediction_log"]), dg.AssetKey([spec.name, "features"])],
        description="Per variant: live AUC and accuracy from the labels that arrived later, sample sizes, "
        "and a two-proportion z-test of champion against challenger.",
    )
    def _ab_report(context: dg.AssetExecutionContext, warehouse: Warehouse, mlflow_tracking: MlflowTracking):
        day = context.partition_key
        store = warehouse.store()
        if not store.exists(spec.name, "features", day):
            raise dg.Failure(
                f"the labels of {day} have not arrived: {spec.name}/features has no partition {day}"
            )
        log = store.read(spec.name, "prediction_log", day).filter(pl.col("variant") != "shadow")
        joined = join_labels(log, store.read(spec.name, "features", day), spec.entity, spec.label.name)
        client = mlflow_tracking.client()
        thresholds = {
            str(v): float(version_tag(client, spec.name, str(v), "threshold") or 0.5)
            for v in joined["model_version"].unique()
        }
        report = variant_report(joined, spec.label.name, thresholds)
        by_variant = {r["variant"]: r for r in report.iter_rows(named=True)}
        metadata: dict = {"labelled_predictions": joined.height, "variants": markdown_table(report)}
        if {"champion", "challenger"} <= by_variant.keys():
            a, b = by_variant["challenger"], by_variant["champion"]
            z, p = two_proportion_z_test(a["correct"], a["rows"], b["correct"], b["rows"])
            metadata |= {"z": z, "p_value": p, "accuracy_difference": a["accuracy"] - b["accuracy"]}
        return dg.MaterializeResult(metadata=metadata)

    return _ab_report
