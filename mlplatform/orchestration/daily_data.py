"""The daily tables of a pipeline (``raw``, the daily references, ``features``) as one multi-asset.

Why one step: a run that stores some tables and not others leaves the warehouse disagreeing with
itself (``raw`` of the new delivery beside ``features`` of the old one, when the leakage gate
blocked). Here every selected table of every partition of the run is built and gated first, and
only when no blocking gate closed is anything written: a run stores everything it was asked for or
changes nothing, across tables, not per asset. The writes are one commit (``core.data.commit``), so
a process killed while writing leaves all of them or none once the next run has recovered it. Each table keeps its own asset key, checks and
lineage in the UI; the multi-asset is subsettable, so ``features`` alone can be rebuilt from the
stored ``raw`` (declarative automation does that when a table is ingested without it).

Static references are delivered once and ingested in runs of their own (``ingest_assets``).
"""

from collections.abc import Iterator

import dagster as dg
import pandera.polars as pa
import polars as pl

from mlplatform.core.data.commit import Write, recover, write_all
from mlplatform.core.data.contracts import build_schema, validate_days
from mlplatform.core.data.ingest import ingest_files, ingest_table
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.features.gates import feature_contract, feature_schema_gate, leakage_gate
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.automation import every_partition_eager
from mlplatform.orchestration.checks import gate_evaluation, latest_materializations
from mlplatform.orchestration.feature_assets import CHECKS as FEATURE_CHECKS
from mlplatform.orchestration.feature_assets import build_day, features_metadata
from mlplatform.orchestration.ingest_assets import CHECKS as INGEST_CHECKS
from mlplatform.orchestration.ingest_assets import freshness_policy
from mlplatform.orchestration.metadata import add_day_row_counts, day_range_label, markdown_table
from mlplatform.orchestration.resources import LandingZone, Warehouse

Gates = dict[str, dict[str, list[GateResult]]]  # table -> day -> gates
# The run tag an operator sets to accept this run's volumes outside the band (a re-delivery that
# really doubles a day): the decision is recorded on the run; an empty day or a done marker that
# disagrees still blocks.
ACCEPT_VOLUME = "mlplatform/accept_volume"


def daily_data_asset(spec: PipelineSpec, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    ingested = ["raw", *spec.daily_references]
    tables = {name: ingest_table(spec, name) for name in ingested}
    key = {name: dg.AssetKey([spec.name, name]) for name in [*ingested, "features"]}
    contract = build_schema(f"{spec.name}.features", feature_contract(spec))
    static = [dg.AssetKey([spec.name, r]) for r in spec.static_references]
    specs = [
        dg.AssetSpec(
            key["raw"],
            description=f"The day's landing file {spec.source.path}, typed and held to the spec.",
            freshness_policy=freshness_policy(spec),
            kinds={"polars", "parquet"},
            group_name=spec.name,
        ),
        *[
            dg.AssetSpec(
                key[name],
                description=f"Reference table {name} from {spec.references[name].path}, looked up by "
                f"{spec.references[name].key}.",
                kinds={"polars", "parquet"},
                group_name=spec.name,
            )
            for name in spec.daily_references
        ],
        dg.AssetSpec(
            key["features"],
            deps=[key[n] for n in ingested] + static,
            description=f"{spec.features.function} over raw and the references, label "
            f"{spec.label.name!r} = {spec.label.expr} (null -> {spec.label.when_null}).",
            automation_condition=every_partition_eager(ignore=static),
            kinds={"polars", "parquet"},
            group_name=spec.name,
        ),
    ]
    checks = [
        dg.AssetCheckSpec(check, asset=key[name], blocking=True, partitions_def=partitions, description=text)
        for name in ingested
        for check, text in INGEST_CHECKS.items()
    ] + [
        dg.AssetCheckSpec(
            check, asset=key["features"], blocking=True, partitions_def=partitions, description=text
        )
        for check, text in FEATURE_CHECKS.items()
    ]

    @dg.multi_asset(
        name=f"{spec.name}__daily_data",
        specs=specs,
        check_specs=checks,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
    )
    def _daily(
        context: dg.AssetExecutionContext, warehouse: Warehouse, landing: LandingZone, alerts: AlertNotifier
    ):
        store = warehouse.store()
        for line in recover(store):  # a run killed while it published: completed before this one reads
            context.log.warning(line)
        days = list(context.partition_keys)
        selected = [n for n in key if key[n] in context.selected_asset_keys]
        gates: Gates = {}
        frames: dict[str, dict[str, pl.DataFrame]] = {}
        for name in selected:
            if name == "features":
                continue

            def stored_rows(day: str, table: str = name) -> int | None:
                exists = store.exists(spec.name, table, day)
                return store.row_count(spec.name, table, day) if exists else None

            accepted = context.run.tags.get(ACCEPT_VOLUME) == "true"
            results = ingest_files(landing.folder(spec.name), days, tables[name], stored_rows, accepted)
            gates[name] = {str(d): r.gates for d, r in results.items()}
            frames[name] = {str(d): r.frame for d, r in results.items() if r.ok and r.frame is not None}
        if "features" in selected:
            frames["features"], gates["features"] = _features(spec, store, contract, days, frames)
        yield from _stop_if_blocked(context, spec, key, gates, alerts)
        writes = [Write(spec.name, name, day, frames[name][day]) for name in selected for day in days]
        stored = write_all(store, writes)  # one commit: a crash leaves all of it or none
        for n, name in enumerate(selected):
            table = stored[n * len(days) : (n + 1) * len(days)]
            written = [
                {"day": d, "rows": s.rows, "data_version": s.data_version}
                for d, s in zip(days, table, strict=True)
            ]
            add_day_row_counts(context, key[name], {d: s.rows for d, s in zip(days, table, strict=True)})
            yield _materialized(spec, key[name], name, days, written, frames[name])
        # After the materializations, so each evaluation targets the one its partition just got
        # (the UI shows a partition's check result only against its latest materialization).
        for name in selected:
            targets = latest_materializations(context.instance, key[name], days)
            for day in days:
                for gate in gates[name][day]:
                    yield gate_evaluation(key[name], gate, day, targets.get(day))
        for check_key in context.selected_asset_check_keys:
            output = context.assets_def.get_output_name_for_asset_check_key(check_key)
            yield dg.Output(None, output_name=output)
        context.log.info(f"stored {', '.join(selected)} for {day_range_label(days)}")

    return _daily


def _features(
    spec: PipelineSpec,
    store: ParquetWarehouse,
    contract: pa.DataFrameSchema,
    days: list[str],
    frames: dict[str, dict[str, pl.DataFrame]],
) -> tuple[dict[str, pl.DataFrame], dict[str, list[GateResult]]]:
    """Each day's features from this run's tables (or the stored ones not in the run). A day whose
    input was blocked is not built: its input's gates already say why the run stops."""
    absent: dict[str, list[str]] = {}
    for name in ["raw", *spec.daily_references]:
        if name not in frames:  # read from the warehouse: every day must be there
            stored = set(store.days(spec.name, name))
            absent[name] = [d for d in days if d not in stored]
    if any(absent.values()):
        needs = "; ".join(
            f"{name} for {len(d)} day(s) {', '.join(d[:5])}{' ...' if len(d) > 5 else ''}"
            for name, d in absent.items()
            if d
        )
        raise dg.Failure(
            f"{spec.name}: features need {needs}, neither stored nor ingested in this run, so nothing "
            "was written; ingest those days first (select the tables with features)."
        )
    static = {name: store.read(spec.name, name) for name in spec.static_references}
    built: dict[str, pl.DataFrame] = {}
    gates: dict[str, list[GateResult]] = {}
    for day in days:
        inputs: dict[str, pl.DataFrame] = {}
        for name in ["raw", *spec.daily_references]:
            frame = frames[name].get(day) if name in frames else store.read(spec.name, name, day)
            if frame is not None:
                inputs[name] = frame
        if len(inputs) <= len(spec.daily_references):
            gates[day] = []
            continue
        raw = inputs.pop("raw")
        features, failed = build_day(spec, raw, {**static, **inputs})
        if features is None:
            gates[day] = failed
        else:
            built[day] = features
    failures = validate_days(contract, built)
    for day, frame in built.items():
        gates[day] = [
            feature_schema_gate(frame, contract, spec.entity, failures[day]),
            leakage_gate(frame, spec),
        ]
    return built, gates


def _stop_if_blocked(
    context: dg.AssetExecutionContext,
    spec: PipelineSpec,
    key: dict[str, dg.AssetKey],
    gates: Gates,
    alerts: AlertNotifier,
) -> Iterator[dg.AssetCheckEvaluation]:
    """If any gate of any table blocks: report every evaluation of the blocked partitions, alert,
    and fail the step before anything is written (no partition of any table in the run changes)."""
    blocked = [
        (name, day, gate)
        for name, by_day in gates.items()
        for day, day_gates in by_day.items()
        for gate in day_gates
        if gate.blocks
    ]
    if not blocked:
        return
    for name, by_day in gates.items():
        failed = [day for day, day_gates in by_day.items() if any(g.blocks for g in day_gates)]
        # Each targets what is stored for its day: the day keeps its old data and shows the gate
        # that refused the new delivery.
        targets = latest_materializations(context.instance, key[name], failed) if failed else {}
        for day in failed:
            for gate in by_day[day]:
                yield gate_evaluation(key[name], gate, day, targets.get(day))
    lines = [f"{name} {day}: {gate.name}: {gate.summary}" for name, day, gate in blocked]
    unchanged = ", ".join(gates)
    where = "; ".join(
        f"{name} on {', '.join(sorted({d for n, d, _ in blocked if n == name}))}"
        for name in gates
        if any(n == name for n, _, _ in blocked)
    )
    alerts.send(
        "gate_failed",
        spec.name,
        f"{spec.name}: {len(lines)} blocking gate(s) closed; nothing written ({unchanged}); {lines[0]}",
        {"blocked": lines[:20]},
        log=context.log,
    )
    raise dg.Failure(
        description=f"{spec.name}: {len(lines)} blocking gate(s) closed ({where}), so no partition of "
        f"{unchanged} was written in this run ({day_range_label(list(context.partition_keys))}).\n"
        + "\n".join(lines[:20]),
        metadata={"blocked": sorted({f"{name} {day}" for name, day, _ in blocked})},
    )


def _materialized(
    spec: PipelineSpec,
    key: dg.AssetKey,
    name: str,
    days: list[str],
    written: list[dict],
    frames: dict[str, pl.DataFrame],
) -> dg.MaterializeResult:
    summary = pl.DataFrame(written)
    last = frames[days[-1]]
    metadata: dict = {
        "partitions": day_range_label(days),
        "range_rows": int(summary["rows"].sum()),
        "rows_per_partition": markdown_table(summary, max_rows=31),
        "preview": markdown_table(last, max_rows=10),
    }
    if name == "features":
        metadata |= features_metadata(spec, frames)
    version = dg.DataVersion(written[0]["data_version"]) if len(written) == 1 else None
    return dg.MaterializeResult(asset_key=key, metadata=metadata, data_version=version)
