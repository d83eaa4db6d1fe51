"""Turning ``GateResult``s into Dagster asset check evaluations, per partition.

Assets that run many partitions in one step (single-run backfills) yield one evaluation per
partition and gate, then the check's own step output. When any gate blocks, every evaluation is
reported and the step fails before the asset writes anything.

Dagster shows a check's result for a partition (the check's Partitions tab, GraphQL
``partitionStatuses``) only while the evaluation targets that partition's latest materialization;
one that targets nothing is treated as stale once the partition is materialized. So passing
evaluations are yielded after the asset's materialization, each targeting its own partition's,
and a blocking failure targets what is stored for the day (the day keeps its old data and shows
the gate that refused the new delivery).
"""

from collections.abc import Iterator, Mapping, Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from mlplatform.core.gate_result import GateResult
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.metadata import markdown_table

Target = AssetCheckEvaluationTargetMaterializationData


def gate_metadata(gate: GateResult) -> dict:
    metadata: dict = {"summary": gate.summary}
    metadata.update({k: v for k, v in gate.figures.items() if v is not None})
    # Evidence explains a closed or warning gate; a passing partition needs only its figures
    # (and in a year's backfill, 3,600 passing evaluations without tables are far cheaper to store).
    if not gate.passed and gate.evidence is not None and gate.evidence.height:
        metadata["evidence"] = markdown_table(gate.evidence, max_rows=30)
    return metadata


def gate_evaluation(
    key: dg.AssetKey, gate: GateResult, day: str | None, target: Target | None = None
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=gate.name,
        passed=gate.passed,
        metadata=gate_metadata(gate),
        target_materialization_data=target,
        partition=day,
        blocking=True,
        severity=dg.AssetCheckSeverity.ERROR if gate.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=gate.summary,
    )


def latest_materializations(
    instance: dg.DagsterInstance, key: dg.AssetKey, days: Sequence[str | None]
) -> dict[str | None, Target]:
    """The latest materialization of each of ``days`` (``None``: an unpartitioned asset), in one query."""
    partitions = [d for d in days if d is not None]
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions or None),
        limit=max(len(partitions), 1),
    ).records
    latest: dict[str | None, Target] = {}
    for record in records:  # newest first
        day = record.partition_key if partitions else None
        latest.setdefault(
            day, Target(storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp)
        )
    return latest


def stored_evaluations(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    gates_by_day: Mapping[str | None, Sequence[GateResult]],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """Yielded after the asset's materialization: every gate of every partition, each targeting the
    materialization its partition just got, then each check's own step output."""
    targets = latest_materializations(context.instance, key, list(gates_by_day))
    for day, gates in gates_by_day.items():
        for gate in gates:
            yield gate_evaluation(key, gate, day, targets.get(day))
    for output_name in context.assets_def.check_specs_by_output_name:
        yield dg.Output(None, output_name=output_name)


def stop_if_blocked(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    gates_by_day: Mapping[str | None, Sequence[GateResult]],
    alerts: AlertNotifier,
) -> Iterator:
    """If any gate blocks: report every evaluation of the failed partitions, alert, fail the step."""
    failed = {d: g for d, g in gates_by_day.items() if any(x.blocks for x in g)}
    if not failed:
        return
    targets = latest_materializations(context.instance, key, list(failed))
    for day, gates in failed.items():
        for gate in gates:
            yield gate_evaluation(key, gate, day, targets.get(day))
    lines = [
        f"{day or 'static'}: {g.name}: {g.summary}"
        for day, gates in failed.items()
        for g in gates
        if g.blocks
    ]
    alerts.send(
        "gate_failed",
        key.path[0],
        f"{key.to_user_string()}: {len(failed)} partition(s) blocked, nothing written; {lines[0]}",
        {"blocked": lines[:20]},
        log=context.log,
    )
    raise dg.Failure(
        description=f"{key.to_user_string()}: {len(failed)} partition(s) blocked; nothing was written.\n"
        + "\n".join(lines[:20]),
        metadata={"blocked_partitions": [str(d) for d in failed]},
    )
