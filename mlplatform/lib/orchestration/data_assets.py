"""Data assets of a pipeline: ``raw``, its reference tables, and ``features``.

Every ingesting asset validates all the partitions of its run before it writes any: a run either
stores every partition it was asked for or changes nothing, and its blocking check carries the
evidence (file, column, check, offending values, counts) per partition. Backfills run as a single
run (``BackfillPolicy.single_run``), so a year of days is one process, not 365.
"""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl

from mlplatform.lib.contracts import build_schema, describe, validate
from mlplatform.lib.features import FeatureError, attach_label, compute_features
from mlplatform.lib.ingest import IngestResult, ingest_file
from mlplatform.lib.orchestration.metadata import day_range_label, markdown_table
from mlplatform.lib.orchestration.resources import LandingZone, Warehouse
from mlplatform.lib.spec import PipelineSpec, TableSchema

CONTRACT_CHECK = "contract"
FEATURE_SCHEMA_CHECK = "feature_schema"


def _evaluation(
    key: dg.AssetKey, check: str, day: str | None, passed: bool, metadata: dict
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=check,
        passed=passed,
        metadata=metadata,
        partition=day,
        blocking=True,
        severity=dg.AssetCheckSeverity.ERROR,
    )


def _checked(context: dg.AssetExecutionContext, key: dg.AssetKey, check: str) -> dg.Output:
    """The check's own step output; its per-partition evaluations are yielded separately."""
    name = context.assets_def.get_output_name_for_asset_check_key(dg.AssetCheckKey(key, check))
    return dg.Output(None, output_name=name)


def _block(key: dg.AssetKey, check: str, failed: dict[str | None, tuple[str, pl.DataFrame]]) -> Iterator:
    """Report every failed partition on the check, then stop the run before anything is written."""
    for day, (summary, failures) in failed.items():
        yield _evaluation(
            key,
            check,
            day,
            False,
            {
                "problem": summary,
                "violations": int(failures["count"].sum()) if failures.height else 1,
                "failure_cases": markdown_table(failures),
            },
        )
    summaries = "\n".join(summary for summary, _ in failed.values())
    raise dg.Failure(
        description=f"{key.to_user_string()}: {len(failed)} partition(s) failed the "
        f"{check} check; nothing was written.\n{summaries}",
        metadata={"failed_partitions": [str(d) for d in failed]},
    )


def ingest_asset(
    spec: PipelineSpec,
    table: str,
    schema: TableSchema,
    path_pattern: str,
    partition_expr: str | None,
    partitions: dg.PartitionsDefinition | None,
    description: str,
) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, table])
    contract = build_schema(f"{spec.name}.{table}", schema)

    @dg.asset(
        key=key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        group_name=spec.name,
        kinds={"polars", "parquet"},
        description=description,
        check_specs=[
            dg.AssetCheckSpec(
                CONTRACT_CHECK,
                asset=key,
                blocking=True,
                partitions_def=partitions,
                description="The pandera contract built from the spec: types, nullability, "
                "ranges, allowed values, primary-key uniqueness and the partition day.",
            )
        ],
    )
    def _ingest(context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone):
        folder = landing.folder(spec.name)
        days: list[str | None] = list(context.partition_keys) if partitions else [None]
        results: dict[str | None, IngestResult] = {}
        for day in days:
            path = folder / (path_pattern.format(day=day) if day else path_pattern)
            results[day] = ingest_file(
                path, schema, contract, spec.source.null_values, partition_expr, day
            )
        failed = {d: (r.summary(), r.failures) for d, r in results.items() if not r.ok}
        if failed:
            yield from _block(key, CONTRACT_CHECK, failed)
        store = warehouse.store()
        rows = []
        for day, result in results.items():
            assert result.frame is not None
            stored = store.write(spec.name, table, result.frame, day)
            rows.append({"day": day or "-", "rows": stored.rows, "data_version": stored.data_version,
                         "file": Path(result.path).name})
            yield _evaluation(key, CONTRACT_CHECK, day, True, {"rows": stored.rows})
        yield _checked(context, key, CONTRACT_CHECK)
        per_day = pl.DataFrame(rows)
        last = results[days[-1]].frame
        assert last is not None
        context.log.info(f"stored {per_day['rows'].sum()} rows in {len(days)} partition(s)")
        yield dg.MaterializeResult(
            metadata={
                "partitions": day_range_label([str(d) for d in days]) if partitions else "static",
                "dagster/row_count": int(per_day["rows"].sum()),
                "rows_per_partition": markdown_table(per_day, max_rows=31),
                "preview": markdown_table(last, max_rows=10),
                "landing_zone": str(folder),
            },
            data_version=dg.DataVersion(rows[0]["data_version"]) if len(rows) == 1 else None,
        )

    return _ingest


def feature_contract(spec: PipelineSpec) -> TableSchema:
    """The schema every ``features`` partition must satisfy, derived from the spec."""
    columns: dict[str, dict] = {c: {"type": spec.schema_.columns[c].type} for c in spec.entity}
    columns[spec.timestamp] = {"type": "datetime"}
    columns.update({c: {"type": "str", "nullable": True} for c in spec.features.categorical})
    columns.update({c: {"type": "float", "nullable": True} for c in spec.features.numeric})
    columns[spec.label.name] = {"type": "int", "min": 0, "max": 1}
    return TableSchema.model_validate({"columns": columns, "primary_key": spec.entity})


def features_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, "features"])
    contract = build_schema(f"{spec.name}.features", feature_contract(spec))
    daily_refs = [n for n, r in spec.references.items() if r.partitioned]
    static_refs = [n for n, r in spec.references.items() if not r.partitioned]

    @dg.asset(
        key=key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=spec.name,
        kinds={"polars", "parquet"},
        deps=[dg.AssetKey([spec.name, "raw"]), *[dg.AssetKey([spec.name, r]) for r in spec.references]],
        description=f"{spec.features.function} over raw and the references, label "
        f"{spec.label.name!r} = {spec.label.expr} (null -> {spec.label.when_null}).",
        check_specs=[
            dg.AssetCheckSpec(
                FEATURE_SCHEMA_CHECK,
                asset=key,
                blocking=True,
                partitions_def=partitions,
                description="Every declared feature with its type, a 0/1 label, unique entities, "
                "and no post-event column reaching the feature function.",
            )
        ],
    )
    def _features(context: dg.AssetExecutionContext, warehouse: Warehouse):
        store = warehouse.store()
        static = {name: store.read(spec.name, name) for name in static_refs}
        built: dict[str, pl.DataFrame] = {}
        failed: dict[str | None, tuple[str, pl.DataFrame]] = {}
        for day in context.partition_keys:
            raw = store.read(spec.name, "raw", day)
            refs = {**static, **{n: store.read(spec.name, n, day) for n in daily_refs}}
            try:
                frame = attach_label(spec, raw, compute_features(spec, raw, refs))
            except FeatureError as exc:
                failed[day] = (str(exc), pl.DataFrame(
                    [{"column": "<function>", "check": "feature contract", "failure_case": str(exc), "count": 1}]
                ))
                continue
            failures = validate(contract, frame)
            if failures.height:
                failed[day] = (f"features {day}: {describe(failures)}", failures)
            built[day] = frame
        if failed:
            yield from _block(key, FEATURE_SCHEMA_CHECK, failed)
        rows = []
        for day, frame in built.items():
            stored = store.write(spec.name, "features", frame, day)
            rate = float(frame[spec.label.name].mean() or 0.0)
            rows.append({"day": day, "rows": stored.rows, "label_rate": rate})
            yield _evaluation(key, FEATURE_SCHEMA_CHECK, day, True, {"rows": stored.rows})
        yield _checked(context, key, FEATURE_SCHEMA_CHECK)
        per_day = pl.DataFrame(rows)
        last = built[context.partition_keys[-1]]
        yield dg.MaterializeResult(
            metadata={
                "partitions": day_range_label(list(context.partition_keys)),
                "dagster/row_count": int(per_day["rows"].sum()),
                "label_rate": float((per_day["rows"] * per_day["label_rate"]).sum() / per_day["rows"].sum()),
                "rows_per_partition": markdown_table(per_day, max_rows=31),
                "null_share": markdown_table(
                    last.select(spec.features.columns).null_count().with_columns(pl.all() / last.height)
                    .transpose(include_header=True, header_name="feature", column_names=["null_share"])
                    .sort("null_share", descending=True),
                    max_rows=40,
                ),
                "preview": markdown_table(last, max_rows=10),
            }
        )

    return _features


def data_assets(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    assets = [
        ingest_asset(
            spec, "raw", spec.schema_, spec.source.path, spec.source.partition_expr, partitions,
            f"The day's landing file {spec.source.path}, typed by the spec's schema.",
        )
    ]
    for name, ref in spec.references.items():
        assets.append(
            ingest_asset(
                spec, name, ref.schema_, ref.path, ref.partition_expr,
                partitions if ref.partitioned else None,
                f"Reference table {name} from {ref.path}, looked up by {ref.key}.",
            )
        )
    assets.append(features_asset(spec, partitions))
    return assets
