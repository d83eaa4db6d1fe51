"""Ingesting one landing file: type it, check its contract, report every problem as rows.

The result carries either the typed frame or a failure table (column, check, failure_case,
count), never an exception for bad data: the asset decides what blocks, and the failure table is
what a person sees in the UI to learn why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandera.polars as pa
import polars as pl

from mlplatform.lib.contracts import FAILURE_COLUMNS, describe, validate
from mlplatform.lib.landing import LandingFileError, read_landing_file
from mlplatform.lib.spec import TableSchema


@dataclass(frozen=True)
class IngestResult:
    path: Path
    frame: pl.DataFrame | None
    failures: pl.DataFrame

    @property
    def ok(self) -> bool:
        return self.frame is not None and self.failures.height == 0

    def summary(self) -> str:
        if self.ok:
            return f"{self.path}: {self.frame.height if self.frame is not None else 0} rows valid"
        return f"{self.path}: {describe(self.failures)}"


def _failure(column: str, check: str, case: str, count: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        [{"column": column, "check": check, "failure_case": case, "count": count}],
        schema=FAILURE_COLUMNS,
    )


def ingest_file(
    path: Path,
    schema: TableSchema,
    contract: pa.DataFrameSchema,
    null_values: list[str],
    partition_expr: str | None = None,
    day: str | None = None,
) -> IngestResult:
    try:
        frame = read_landing_file(path, schema, null_values)
    except LandingFileError as exc:
        column, _, _ = exc.problem.partition(":")
        column = column.removeprefix("column ").strip("'") if column.startswith("column ") else "<file>"
        return IngestResult(path, None, _failure(column, "readable and typed", exc.problem))
    failures = [validate(contract, frame)]
    if partition_expr and day:
        other_day = frame.select(pl.sql_expr(partition_expr).cast(pl.String).alias("d")).filter(
            pl.col("d") != day
        )
        if other_day.height:
            counts = other_day.group_by("d").len().sort("d")
            failures += [
                _failure("<partition>", f"{partition_expr} = {day}", str(d), int(n))
                for d, n in counts.iter_rows()
            ]
    failure_table = pl.concat(failures)
    return IngestResult(path, frame if failure_table.height == 0 else None, failure_table)
