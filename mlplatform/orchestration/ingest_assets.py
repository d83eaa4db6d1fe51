"""Ingesting static reference tables (delivered whole, once) from landing files to the warehouse,
and what every ingested table's checks mean.

The daily tables (``raw``, daily references, ``features``) are ingested together, all or nothing,
in ``daily_data``; a static table is its own run, and passes every data gate before it is written.
"""

import datetime as dt

import dagster as dg
import polars as pl

from mlplatform.core.data.ingest import IngestTable, ingest_files, ingest_table
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.checks import stop_if_blocked, stored_evaluations
from mlplatform.orchestration.metadata import day_range_label, markdown_table
from mlplatform.orchestration.resources import LandingZone, Warehouse

CHECKS = {
    "contract": "The file typed and held to the spec: every column present and typed (timestamps by "
    "their declared rule), no undeclared column, nullability (a blank is a null), ranges, finite "
    "floats, allowed values, columns consistent with their timestamp, and every row filed under "
    "its own day. Every problem of the file in one report.",
    "primary_key": "No two rows share the primary key (unless the table allows duplicates).",
    "completeness": "Each column's null share within its limit; an entirely null column fails.",
    "volume": "Not empty; the upstream's done marker agrees; rows within the table's band of the "
    "trailing days and of the stored partition a re-delivery replaces (blocking as declared).",
}


def freshness_policy(spec: PipelineSpec) -> dg.FreshnessPolicy:
    """``raw`` is stale when no day arrived within the spec's freshness hours."""
    hours = spec.monitoring.freshness_hours
    return dg.FreshnessPolicy.time_window(
        fail_window=dt.timedelta(hours=hours), warn_window=dt.timedelta(hours=hours * 0.9)
    )


def ingest_asset(
    spec: PipelineSpec,
    table: IngestTable,
    partitions: dg.PartitionsDefinition | None,
    description: str,
) -> dg.AssetsDefinition:
    key = dg.AssetKey([spec.name, table.name])
    check_names = list(CHECKS) if partitions else [c for c in CHECKS if c != "volume"]
    freshness = freshness_policy(spec) if partitions and table.name == "raw" else None

    @dg.asset(
        key=key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        group_name=spec.name,
        kinds={"polars", "parquet"},
        description=description,
        freshness_policy=freshness,
        check_specs=[
            dg.AssetCheckSpec(
                name, asset=key, blocking=True, partitions_def=partitions, description=CHECKS[name]
            )
            for name in check_names
        ],
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, alerts: AlertNotifier
    ):
        folder = landing.folder(spec.name)
        store = warehouse.store()
        days: list[str | None] = list(context.partition_keys) if partitions else [None]

        def stored_rows(day: str) -> int | None:
            exists = store.exists(spec.name, table.name, day)
            return store.row_count(spec.name, table.name, day) if exists else None

        results = ingest_files(folder, days, table, stored_rows)
        yield from stop_if_blocked(context, key, {d: r.gates for d, r in results.items()}, alerts)
        per_day: list[dict] = []
        versions: list[str] = []
        for day, result in results.items():
            assert result.frame is not None
            stored = store.write(spec.name, table.name, result.frame, day)
            versions.append(stored.data_version)
            per_day.append(
                {
                    "day": day or "-",
                    "rows": stored.rows,
                    "data_version": stored.data_version,
                    "file": result.path.name,
                }
            )
        summary = pl.DataFrame(per_day)
        last = results[days[-1]].frame
        assert last is not None
        context.log.info(f"stored {summary['rows'].sum()} rows in {len(days)} partition(s)")
        yield dg.MaterializeResult(
            metadata={
                "partitions": day_range_label([str(d) for d in days]) if partitions else "static",
                "dagster/row_count": int(summary["rows"].sum()),
                "rows_per_partition": markdown_table(summary, max_rows=31),
                "preview": markdown_table(last, max_rows=10),
                "landing_zone": str(folder),
            },
            data_version=dg.DataVersion(versions[0]) if len(versions) == 1 else None,
        )
        yield from stored_evaluations(context, key, {d: r.gates for d, r in results.items()})

    return _ingest


def static_reference_assets(spec: PipelineSpec) -> list[dg.AssetsDefinition]:
    return [
        ingest_asset(
            spec,
            ingest_table(spec, name),
            None,
            f"Reference table {name} from {spec.references[name].path}, looked up by "
            f"{spec.references[name].key}.",
        )
        for name in spec.static_references
    ]
