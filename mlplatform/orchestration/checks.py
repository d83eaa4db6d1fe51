"""Turning ``GateResult``s into Dagster asset check evaluations, per partition.

Assets that run many partitions in one step (single-run backfills) yield one evaluation per
partition and gate, then the check's own step output. When any gate blocks, every evaluation is
reported and the step fails before the asset writes anything.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from mlplatform.core.gate_result import GateResult
from mlplatform.orchestration.alerts import AlertNotifier
from mlplatform.orchestration.metadata import markdown_table


def gate_metadata(gate: GateResult) -> dict:
    metadata: dict = {"summary": gate.summary}
    metadata.update({k: v for k, v in gate.figures.items() if v is not None})
    # Evidence explains a closed or warning gate; a passing partition needs only its figures
    # (and in a year's backfill, 3,600 passing evaluations without tables are far cheaper to store).
    if not gate.passed and gate.evidence is not None and gate.evidence.height:
        metadata["evidence"] = markdown_table(gate.evidence, max_rows=30)
    return metadata


def gate_evaluation(key: dg.AssetKey, gate: GateResult, day: str | None) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=key,
        check_name=gate.name,
        passed=gate.passed,
        metadata=gate_metadata(gate),
        partition=day,
        blocking=True,
        severity=dg.AssetCheckSeverity.ERROR if gate.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=gate.summary,
    )


def check_outputs(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """Each check's own step output; the per-partition evaluations are yielded separately."""
    for output_name in context.assets_def.check_specs_by_output_name:
        yield dg.Output(None, output_name=output_name)


def stop_if_blocked(
    key: dg.AssetKey,
    gates_by_day: Mapping[str | None, Sequence[GateResult]],
    alerts: AlertNotifier,
    log: Any = None,
) -> Iterator:
    """If any gate blocks: report every evaluation of the failed partitions, alert, fail the step."""
    failed = {d: g for d, g in gates_by_day.items() if any(x.blocks for x in g)}
    if not failed:
        return
    for day, gates in failed.items():
        for gate in gates:
            yield gate_evaluation(key, gate, day)
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
        log=log,
    )
    raise dg.Failure(
        description=f"{key.to_user_string()}: {len(failed)} partition(s) blocked; nothing was written.\n"
        + "\n".join(lines[:20]),
        metadata={"blocked_partitions": [str(d) for d in failed]},
    )
