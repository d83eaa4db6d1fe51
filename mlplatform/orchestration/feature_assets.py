"""The ``features`` asset: the pipeline's feature function over raw and references, labelled.

Like ingestion, every partition of a run must pass the feature gates (schema, leakage) before
any is written.
"""

import dagster as dg
import polars as pl

from mlplatform.core.data.contracts import build_schema, validate_days
from mlplatform.core.features.compute import FeatureError, LeakageError, attach_label, compute_features
from mlplatform.core.features.gates import (
    feature_contract,
    feature_schema_gate,
    function_failure,
    leakage_gate,
)
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.automation import every_partition_eager
from mlplatform.orchestration.checks import stop_if_blocked, stored_evaluations
from mlplatform.orchestration.metadata import day_range_label, markdown_table
from mlplatform.orchestration.resources import Warehouse

CHECKS = {
    "feature_schema": "Every declared feature with its type, a 0/1 label, unique entity keys.",
    "no_label_leakage": "No post-event column reaches the features, and no single feature predicts "
    "the label almost perfectly on its own.",
}


def _build(
    spec: PipelineSpec, raw: pl.DataFrame, refs: dict[str, pl.DataFrame]
) -> tuple[pl.DataFrame | None, list[GateResult]]:
    """The day's labelled features, or the gate a broken feature function failed."""
    try:
        return attach_label(spec, raw, compute_features(spec, raw, refs)), []
    except LeakageError as exc:
        return None, [function_failure("no_label_leakage", str(exc))]
    except FeatureError as exc:
        return None, [function_failure("feature_schema", str(exc))]


def features_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "features"])
    contract = build_schema(f"{spec.name}.features", feature_contract(spec))
    daily_refs, static_refs = spec.daily_references, spec.static_references

    @dg.asset(
        key=key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=spec.name,
        kinds={"polars", "parquet"},
        deps=[dg.AssetKey([spec.name, "raw"]), *[dg.AssetKey([spec.name, r]) for r in spec.references]],
        automation_condition=every_partition_eager(ignore=[dg.AssetKey([spec.name, r]) for r in static_refs]),
        description=f"{spec.features.function} over raw and the references, label "
        f"{spec.label.name!r} = {spec.label.expr} (null -> {spec.label.when_null}).",
        check_specs=[
            dg.AssetCheckSpec(name, asset=key, blocking=True, partitions_def=partitions, description=text)
            for name, text in CHECKS.items()
        ],
    )
    def _features(context: dg.AssetExecutionContext, warehouse: Warehouse, alerts: AlertNotifier):
        store = warehouse.store()
        static = {name: store.read(spec.name, name) for name in static_refs}
        built: dict[str, pl.DataFrame | None] = {}
        gates: dict[str | None, list[GateResult]] = {}
        for day in context.partition_keys:
            raw = store.read(spec.name, "raw", day)
            refs = {**static, **{n: store.read(spec.name, n, day) for n in daily_refs}}
            built[day], gates[day] = _build(spec, raw, refs)
        failures = validate_days(contract, {d: f for d, f in built.items() if f is not None})
        for day, frame in built.items():
            if frame is not None:
                gates[day] = [
                    feature_schema_gate(frame, contract, spec.entity, failures[day]),
                    leakage_gate(frame, spec),
                ]
        yield from stop_if_blocked(context, key, gates, alerts)
        rows: list[dict] = []
        positives = total = 0
        for day, frame in built.items():
            assert frame is not None
            stored = store.write(spec.name, "features", frame, day)
            day_positives = int(frame[spec.label.name].sum())
            positives += day_positives
            total += stored.rows
            rows.append({"day": day, "rows": stored.rows, "label_rate": day_positives / max(frame.height, 1)})
        last = built[context.partition_keys[-1]]
        assert last is not None
        null_share = (
            last.select(spec.features.columns)
            .null_count()
            .with_columns(pl.all() / max(last.height, 1))
            .transpose(include_header=True, header_name="feature", column_names=["null_share"])
            .sort("null_share", descending=True)
        )
        yield dg.MaterializeResult(
            metadata={
                "partitions": day_range_label(list(context.partition_keys)),
                "dagster/row_count": total,
                "label_rate": positives / max(total, 1),
                "rows_per_partition": markdown_table(pl.DataFrame(rows), max_rows=31),
                "null_share": markdown_table(null_share, max_rows=40),
                "preview": markdown_table(last, max_rows=10),
            }
        )
        yield from stored_evaluations(context, key, gates)

    return _features
