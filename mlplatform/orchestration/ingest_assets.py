"""Ingesting static reference tables (delivered whole, once) from landing files to the warehouse,
and what every ingested table's checks mean.

The daily tables (``raw``, daily references, ``features``) are ingested together, all or nothing,
in ``daily_data``; a static table is its own run, and passes every data gate before it is written.
"""

import datetime as dt

import dagster as dg

from mlplatform.core.data.ingest import IngestTable, ingest_files, ingest_table
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.checks import stop_if_blocked, stored_evaluations
from mlplatform.orchestration.metadata import markdown_table
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


def static_reference_asset(spec: PipelineSpec, table: IngestTable) -> dg.AssetsDefinition:
    """A reference table delivered whole (planes, airports): its own run, gated before it is written."""
    key = dg.AssetKey([spec.name, table.name])
    reference = spec.references[table.name]

    @dg.asset(
        key=key,
        group_name=spec.name,
        kinds={"polars", "parquet"},
        description=f"Reference table {table.name} from {reference.path}, looked up by {reference.key}.",
        check_specs=[
            dg.AssetCheckSpec(name, asset=key, blocking=True, description=CHECKS[name])
            for name in CHECKS
            if name != "volume"  # a whole table has no trailing days to compare with
        ],
    )
    def _ingest(
        context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, alerts: AlertNotifier
    ):
        folder = landing.folder(spec.name)
        store = warehouse.store()
        result = ingest_files(folder, [None], table, lambda _: None)[None]
        yield from stop_if_blocked(context, key, {None: result.gates}, alerts)
        assert result.frame is not None
        stored = store.write(spec.name, table.name, result.frame)
        context.log.info(f"stored {stored.rows} rows of {table.name}")
        yield dg.MaterializeResult(
            metadata={
                "partitions": "static",
                "dagster/row_count": stored.rows,
                "file": result.path.name,
                "preview": markdown_table(result.frame, max_rows=10),
                "landing_zone": str(folder),
            },
            data_version=dg.DataVersion(stored.data_version),
        )
        yield from stored_evaluations(context, key, {None: result.gates})

    return _ingest


def static_reference_assets(spec: PipelineSpec) -> list[dg.AssetsDefinition]:
    return [static_reference_asset(spec, ingest_table(spec, name)) for name in spec.static_references]
