"""Data gates on one partition: contract, primary key, completeness, volume. Plain Python.

Each returns a ``GateResult`` whose evidence names the offending columns and values with counts,
so a person sees in the UI why the gate closed. Defaults: an entirely null column always fails
completeness (a feed that silently stops sending a column is the commonest upstream break), and
volume compares the day's rows with the median of the trailing partitions.
"""

from __future__ import annotations

import functools
import statistics

import pandera.polars as pa
import polars as pl

from mlplatform.core.data.contracts import FAILURE_COLUMNS, describe, validate
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import DataGateSpec, TableSchema


@functools.cache
def _day_expression(partition_expr: str) -> pl.Expr:
    """The parsed partition expression; parsing SQL costs more than evaluating it on one row."""
    return pl.sql_expr(partition_expr).cast(pl.String).alias("day")


def partition_days(frame: pl.DataFrame, partition_expr: str) -> pl.DataFrame:
    """Each row's day as an ISO string, null where the expression fails for that row.

    SQL functions such as DATE() fail for a whole frame on one bad row (month 13, February 30);
    only then is the expression evaluated row by row, so a bad row is evidence, not a crash.
    """
    expr = _day_expression(partition_expr)
    try:
        return frame.select(expr)
    except pl.exceptions.PolarsError:
        values = []
        for index in range(frame.height):
            try:
                values.append(frame.slice(index, 1).select(expr).item())
            except pl.exceptions.PolarsError:
                values.append(None)
        return pl.DataFrame({"day": values}, schema={"day": pl.String})


def contract_gate(
    frame: pl.DataFrame,
    contract: pa.DataFrameSchema,
    partition_expr: str | None,
    day: str | None,
    failures: pl.DataFrame | None = None,
) -> GateResult:
    """Types, nullability, ranges and allowed values (pandera), and rows filed under another day.

    ``failures`` are the pandera violations when the caller validated many partitions at once.
    """
    if failures is None:
        failures = validate(contract, frame)
    if partition_expr and day:
        days = partition_days(frame, partition_expr)
        other = days.filter(pl.col("day").is_null() | (pl.col("day") != day))
        other = other.group_by("day").len().sort("day", nulls_last=True)
        if other.height:
            wrong = [
                {
                    "column": "<partition>",
                    "check": f"{partition_expr} = {day}",
                    "failure_case": d if d is not None else "not a date",
                    "count": n,
                }
                for d, n in other.iter_rows()
            ]
            failures = pl.concat([failures, pl.DataFrame(wrong, schema=FAILURE_COLUMNS)])
    return GateResult(
        "contract",
        failures.height == 0,
        describe(failures) if failures.height else f"{frame.height} rows satisfy the contract",
        evidence=failures,
        figures={"rows": frame.height, "violations": int(failures["count"].sum()) if failures.height else 0},
    )


def primary_key_gate(frame: pl.DataFrame, key: list[str]) -> GateResult:
    if not key:
        return GateResult("primary_key", True, "no primary key declared", figures={"duplicates": 0})
    duplicated = frame.filter(pl.struct(key).is_duplicated())
    groups = (
        duplicated.group_by(key)
        .len(name="copies")
        .sort("copies", *key, descending=[True] + [False] * len(key))
    )
    passed = duplicated.height == 0
    summary = (
        f"{frame.height} rows, {key} unique"
        if passed
        else f"{groups.height} key(s) of {key} appear more than once ({duplicated.height} rows), e.g. {groups.row(0, named=True)}"
    )
    return GateResult(
        "primary_key",
        passed,
        summary,
        evidence=groups.head(50),
        figures={"duplicated_rows": duplicated.height},
    )


def completeness_gate(frame: pl.DataFrame, schema: TableSchema) -> GateResult:
    rows = max(frame.height, 1)
    shares = frame.select(list(schema.columns)).null_count().row(0, named=True)
    table = []
    for column, spec in schema.columns.items():
        share = shares[column] / rows
        limit = spec.max_null_share if spec.max_null_share is not None else (1.0 if spec.nullable else 0.0)
        entirely_null = frame.height > 0 and shares[column] == frame.height and spec.max_null_share != 1.0
        ok = share <= limit and not entirely_null
        table.append({"column": column, "null_share": share, "limit": limit, "ok": ok})
    evidence = pl.DataFrame(table).sort("ok", pl.col("null_share"), descending=[False, True])
    bad = evidence.filter(~pl.col("ok"))
    summary = (
        "every column within its null-share limit"
        if bad.height == 0
        else "; ".join(
            f"{r['column']!r} is {r['null_share']:.1%} null (limit {r['limit']:.1%})"
            for r in bad.head(5).iter_rows(named=True)
        )
    )
    return GateResult(
        "completeness",
        bad.height == 0,
        summary,
        evidence=evidence,
        figures={"columns_over_limit": bad.height},
    )


def volume_gate(rows: int, trailing: list[int], gate: DataGateSpec) -> GateResult:
    """Rows against the trailing partitions' median: empty blocks, outside the band warns."""
    if rows == 0:
        return GateResult("volume", False, "the partition has no rows", figures={"rows": 0})
    if len(trailing) < gate.volume_min_history:
        return GateResult(
            "volume",
            True,
            f"{rows} rows; {len(trailing)} trailing partition(s), too few to judge",
            severity="warn",
            figures={"rows": rows, "history": len(trailing)},
        )
    median = float(statistics.median(trailing))
    ratio = rows / median if median else float("inf")
    low, high = gate.volume_band
    passed = low <= ratio <= high
    summary = f"{rows} rows = {ratio:.2f} x the median {median:.0f} of the last {len(trailing)} partition(s) (band {low}..{high})"
    return GateResult(
        "volume",
        passed,
        summary,
        severity="warn",
        figures={"rows": rows, "trailing_median": median, "ratio": ratio, "history": len(trailing)},
    )
