"""Ingesting landing files: type each, then run every data gate on it.

The result carries the typed frame and one ``GateResult`` per gate, never an exception for bad
data: the asset decides what blocks. A file that cannot be parsed at all fails the contract gate
with the reason (file, line or byte) and no other gate runs; a file that parses but has missing,
extra or untypeable columns fails the contract with all of them, and the contract still judges
its other columns, so one report holds every problem of the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandera.polars as pa
import polars as pl

from mlplatform.core.data.contracts import build_schema, validate, validate_days
from mlplatform.core.data.days import day_columns
from mlplatform.core.data.gates import (
    DayRule,
    Delivery,
    completeness_gate,
    contract_gate,
    primary_key_gate,
    volume_gate,
)
from mlplatform.core.data.landing import Landed, land_file
from mlplatform.core.data.warehouse import day_range
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import TableSchema, VolumeSpec


@dataclass(frozen=True)
class IngestTable:
    """Everything ingestion needs to know about one table of a pipeline."""

    name: str
    path: str
    schema: TableSchema
    contract: pa.DataFrameSchema
    null_values: list[str]
    rule: DayRule | None = None
    volume: VolumeSpec | None = None

    @property
    def partitioned(self) -> bool:
        return self.rule is not None


def ingest_table(spec: PipelineSpec, name: str) -> IngestTable:
    """``raw`` (the source) or a reference table of ``spec``, ready to ingest."""
    if name == "raw":
        source, schema, path = spec.source, spec.schema_, spec.source.path
        rule: DayRule | None = DayRule(source.partition_expr, source.day, schema)
        volume: VolumeSpec | None = source.volume
    else:
        ref = spec.references[name]
        schema, path = ref.schema_, ref.path
        rule = DayRule(ref.partition_expr, ref.day, schema) if ref.partitioned else None
        volume = ref.volume if ref.partitioned else None
    contract = build_schema(f"{spec.name}.{name}", schema)
    return IngestTable(name, path, schema, contract, spec.source.null_values, rule, volume)


@dataclass(frozen=True)
class IngestResult:
    path: Path
    frame: pl.DataFrame | None
    gates: list[GateResult]

    @property
    def ok(self) -> bool:
        return self.frame is not None and not any(g.blocks for g in self.gates)

    def summary(self) -> str:
        blocking = [g for g in self.gates if g.blocks]
        if not blocking:
            return f"{self.path}: {self.frame.height if self.frame is not None else 0} rows pass every gate"
        return f"{self.path}: " + "; ".join(f"{g.name}: {g.summary}" for g in blocking)


def _marker(folder: Path, volume: VolumeSpec | None, day: str) -> tuple[int | None, str | None]:
    """The row count the upstream's done marker declares, or the problem with the marker."""
    if volume is None or volume.done_marker is None:
        return None, None
    path = folder / volume.done_marker.format(day=day)
    if not path.exists():
        return None, f"no done marker {path}: the delivery is not known to be complete"
    text = path.read_text(errors="replace").strip()
    if not text.isdigit():
        return None, f"done marker {path} holds {text[:40]!r}, not a row count"
    return int(text), None


def _unreadable(landed: Landed) -> IngestResult:
    evidence = landed.problems
    return IngestResult(
        landed.path, None, [GateResult("contract", False, landed.message(), evidence=evidence)]
    )


def ingest_files(
    folder: Path,
    days: Sequence[str | None],
    table: IngestTable,
    stored_rows: Callable[[str], int | None],
    accept_volume: bool = False,
) -> dict[str | None, IngestResult]:
    """Ingest many partitions' files with one contract validation for all the clean ones.

    Volume compares each day with the trailing days (earlier days of this batch where it has them,
    otherwise what ``stored_rows`` reports from the warehouse) and with the stored partition a
    re-delivery would replace; ``accept_volume`` is an operator's decision that this run's rows
    outside the band are right (it never overrides an empty day or a done marker).
    """
    landed = {
        d: land_file(
            folder / (table.path.format(day=d) if d else table.path), table.schema, table.null_values
        )
        for d in days
    }
    clean = {str(d): x.frame for d, x in landed.items() if x.frame is not None and not x.problems.height}
    failures = validate_days(table.contract, clean)
    results: dict[str | None, IngestResult] = {}
    for day, file in landed.items():
        if file.frame is None:
            results[day] = _unreadable(file)
            continue
        frame = file.frame
        if file.problems.height:
            # Missing, extra or untypeable columns: the contract judges the columns that were
            # present and typed, and reports all of it; keys and null shares of a half-typed
            # file would only repeat the same problems.
            bad = [c for c in file.bad_columns if c in table.schema.columns]
            found = validate(table.contract.remove_columns(bad), frame.drop(bad))
            rule = (
                table.rule if table.rule is not None and not set(bad) & set(_day_inputs(table.rule)) else None
            )
            gate = contract_gate(frame.drop(bad), table.contract, rule, day, found, file.problems)
            results[day] = IngestResult(file.path, frame, [_naming(gate, file.path)])
            continue
        gates = [
            contract_gate(frame, table.contract, table.rule, day, failures[str(day)], None, table.schema),
            primary_key_gate(frame, table.schema.primary_key),
            completeness_gate(frame, table.schema),
        ]
        if day is not None and table.volume is not None:
            trailing = []
            for previous in day_range(dt.date.fromisoformat(day), table.volume.trailing_days):
                earlier = landed[previous].frame if previous in landed else None
                rows = earlier.height if earlier is not None else stored_rows(previous)
                if rows is not None:
                    trailing.append(rows)
            marker, problem = _marker(folder, table.volume, day)
            delivery = Delivery(frame.height, trailing, stored_rows(day), marker, problem)
            gates.append(volume_gate(delivery, table.volume, accept_volume))
        results[day] = IngestResult(file.path, frame, [_naming(g, file.path) for g in gates])
    return results


def _day_inputs(rule: DayRule) -> list[str]:
    return day_columns(rule.partition_expr, rule.day)


def _naming(gate: GateResult, path: Path) -> GateResult:
    """A failed gate's summary starts with the file it judged: the day alone does not say which."""
    return gate if gate.passed else replace(gate, summary=f"{path}: {gate.summary}")


def ingest_file(
    folder: Path,
    table: IngestTable,
    day: str | None = None,
    stored_rows: Callable[[str], int | None] = lambda _: None,
) -> IngestResult:
    """One partition's file (or a static table's), as ``ingest_files`` does it."""
    return ingest_files(folder, [day], table, stored_rows)[day]
