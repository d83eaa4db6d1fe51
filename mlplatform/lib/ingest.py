"""Ingesting one landing file: type it, then run every data gate on it.

The result carries the typed frame and one ``GateResult`` per gate, never an exception for bad
data: the asset decides what blocks. A file that cannot even be read or typed fails the contract
gate with the reason (file, column, rows) and no other gate runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from mlplatform.lib.contracts import FAILURE_COLUMNS
from mlplatform.lib.data_gates import completeness_gate, contract_gate, primary_key_gate, volume_gate
from mlplatform.lib.gates import GateResult
from mlplatform.lib.landing import LandingFileError, read_landing_file
from mlplatform.lib.spec import DataGateSpec, TableSchema


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
    try:
        frame = read_landing_file(path, schema, null_values)
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
        return IngestResult(path, None, [GateResult("contract", False, str(exc), evidence=evidence)])
    gates = [
        contract_gate(frame, contract, partition_expr, day),
        primary_key_gate(frame, schema.primary_key),
        completeness_gate(frame, schema),
    ]
    if day is not None:
        gates.append(volume_gate(frame.height, trailing_rows or [], data_gates or DataGateSpec()))
    return IngestResult(path, frame, gates)
