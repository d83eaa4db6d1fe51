"""Ingesting one landing file: type it, then run every data gate on it.

The result carries the typed frame and one ``GateResult`` per gate, never an exception for bad
data: the asset decides what blocks. A file that cannot even be read or typed fails the contract
gate with the reason (file, column, rows) and no other gate runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from mlplatform.core.data.contracts import FAILURE_COLUMNS, validate_days
from mlplatform.core.data.gates import completeness_gate, contract_gate, primary_key_gate, volume_gate
from mlplatform.core.data.landing import LandingFileError, read_landing_file
from mlplatform.core.data.warehouse import day_range
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import DataGateSpec, TableSchema


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


def _read(
    path: Path, schema: TableSchema, null_values: list[str]
) -> tuple[pl.DataFrame | None, GateResult | None]:
    """The typed frame, or the contract failure that says why the file cannot be typed."""
    try:
        return read_landing_file(path, schema, null_values), None
    except LandingFileError as exc:
        column = exc.problem.split("'")[1] if exc.problem.startswith("column '") else "<file>"
        evidence = pl.DataFrame(
            [
                {
                    "column": column,
                    "check": "readable and typed",
                    "failure_case": exc.problem,
                    "count": max(len(exc.rows), 1),
                }
            ],
            schema=FAILURE_COLUMNS,
        )
        return None, GateResult("contract", False, str(exc), evidence=evidence)


def _gates(
    frame: pl.DataFrame,
    schema: TableSchema,
    contract: pa.DataFrameSchema,
    partition_expr: str | None,
    day: str | None,
    trailing_rows: list[int] | None,
    data_gates: DataGateSpec,
    failures: pl.DataFrame | None = None,
) -> list[GateResult]:
    gates = [
        contract_gate(frame, contract, partition_expr, day, failures),
        primary_key_gate(frame, schema.primary_key),
        completeness_gate(frame, schema),
    ]
    if day is not None:
        gates.append(volume_gate(frame.height, trailing_rows or [], data_gates))
    return gates


def ingest_file(
    path: Path,
    schema: TableSchema,
    contract: pa.DataFrameSchema,
    null_values: list[str],
    partition_expr: str | None = None,
    day: str | None = None,
    trailing_rows: list[int] | None = None,
    data_gates: DataGateSpec | None = None,
) -> IngestResult:
    frame, unreadable = _read(path, schema, null_values)
    if frame is None:
        return IngestResult(path, None, [unreadable] if unreadable else [])
    return IngestResult(
        path,
        frame,
        _gates(frame, schema, contract, partition_expr, day, trailing_rows, data_gates or DataGateSpec()),
    )


def ingest_files(
    paths: Mapping[str | None, Path],
    schema: TableSchema,
    contract: pa.DataFrameSchema,
    null_values: list[str],
    partition_expr: str | None,
    data_gates: DataGateSpec,
    stored_rows: Callable[[str], int | None],
) -> dict[str | None, IngestResult]:
    """Ingest many partitions' files with one contract validation for all of them.

    Volume compares each day with the trailing days: earlier days of this batch where it has
    them, otherwise what ``stored_rows`` reports from the warehouse.
    """
    frames: dict[str | None, pl.DataFrame] = {}
    unreadable: dict[str | None, GateResult] = {}
    for day, path in paths.items():
        frame, failure = _read(path, schema, null_values)
        if frame is None:
            assert failure is not None
            unreadable[day] = failure
        else:
            frames[day] = frame
    failures = validate_days(contract, {str(d): f for d, f in frames.items()})
    results: dict[str | None, IngestResult] = {}
    for day, path in paths.items():
        if day in unreadable:
            results[day] = IngestResult(path, None, [unreadable[day]])
            continue
        trailing = None
        if day is not None:
            trailing = []
            for previous in day_range(dt.date.fromisoformat(day), data_gates.volume_trailing_days):
                rows = frames[previous].height if previous in frames else stored_rows(previous)
                if rows is not None:
                    trailing.append(rows)
        gates = _gates(
            frames[day], schema, contract, partition_expr, day, trailing, data_gates, failures[str(day)]
        )
        results[day] = IngestResult(path, frames[day], gates)
    return results
