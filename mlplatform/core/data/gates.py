"""Data gates on one partition: contract, primary key, completeness, volume. Plain Python.

Each returns a ``GateResult`` whose evidence names the offending columns and values with counts,
so a person sees in the UI why the gate closed. Defaults: an entirely null column always fails
completeness (a feed that silently stops sending a column is the commonest upstream break), and
volume compares the day's rows with the median of the trailing partitions.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from mlplatform.core.data.contracts import FAILURE_COLUMNS, FIRST_ROWS, describe, describe_each, validate
from mlplatform.core.data.days import describe_rule, inconsistencies, row_days
from mlplatform.core.gate_result import GateResult
from mlplatform.core.table_spec import DaySpec, TableSchema, VolumeSpec


@dataclass(frozen=True)
class DayRule:
    """How a table's rows are filed under days: a SQL expression or a local-date column."""

    partition_expr: str | None
    day: DaySpec | None
    schema: TableSchema


def contract_gate(
    frame: pl.DataFrame,
    contract: pa.DataFrameSchema,
    rule: DayRule | None,
    day: str | None,
    failures: pl.DataFrame | None = None,
    problems: pl.DataFrame | None = None,
    schema: TableSchema | None = None,
) -> GateResult:
    """Types, nullability, ranges, finiteness and allowed values (pandera), timestamps that disagree
    with the columns declared consistent with them, and rows filed under another day.

    ``failures`` are the pandera violations when the caller validated many partitions at once;
    ``problems`` what typing the file found (missing, extra and untypeable columns), reported first.
    """
    if failures is None:
        failures = validate(contract, frame)
    parts = [p for p in (problems, failures) if p is not None and p.height]
    if schema is not None:
        consistency = inconsistencies(frame, schema)
        if consistency:
            parts.append(pl.DataFrame(consistency, schema=FAILURE_COLUMNS))
    if rule is not None and day:
        parts += [_other_days(frame, rule, day)]
    failures = pl.concat(parts) if parts else pl.DataFrame(schema=FAILURE_COLUMNS)
    summary = describe(failures) if failures.height else f"{frame.height} rows satisfy the contract"
    if problems is not None and problems.height:
        rest = failures.slice(problems.height)
        summary = describe_each(problems) + (f"; and {describe(rest)}" if rest.height else "")
    return GateResult(
        "contract",
        failures.height == 0,
        summary,
        evidence=failures,
        figures={"rows": frame.height, "violations": int(failures["count"].sum()) if failures.height else 0},
    )


def _other_days(frame: pl.DataFrame, rule: DayRule, day: str) -> pl.DataFrame:
    """Rows whose own day (by the table's day rule) is not the partition's."""
    days = row_days(frame, rule.partition_expr, rule.day, rule.schema).with_row_index("row", offset=1)
    other = days.filter(pl.col("day").is_null() | (pl.col("day") != day))
    other = other.group_by("day").agg(
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("row").head(FIRST_ROWS).cast(pl.String).str.join(", ").alias("rows"),
    )
    return pl.DataFrame(
        [
            {
                "column": "<partition>",
                "check": f"{describe_rule(rule.partition_expr, rule.day)} = {day}",
                "failure_case": d if d is not None else "not a date",
                "count": n,
                "rows": rows,
            }
            for d, n, rows in other.sort("day", nulls_last=True).iter_rows()
        ],
        schema=FAILURE_COLUMNS,
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


@dataclass(frozen=True)
class Delivery:
    """What volume judges for one day: rows read, earlier days' rows, the partition a re-delivery
    would replace, and the upstream's completeness signal (None: not declared; -1: missing)."""

    rows: int
    trailing: list[int]
    stored: int | None = None
    marker: int | None = None
    marker_problem: str | None = None


def volume_gate(delivery: Delivery, volume: VolumeSpec, accepted: bool = False) -> GateResult:
    """An empty day, a delivery its own done marker says is incomplete, and rows outside the band
    (against the stored partition being replaced and the trailing days' median).

    Empty and incomplete always block; the band blocks when the table's volume is ``blocking``,
    unless an operator ``accepted`` this run's volumes (a re-delivery that really is larger).
    """
    rows = delivery.rows
    low, high = volume.band
    checks: list[dict] = []

    def judge(message: str, ratio: float | None, ok: bool, blocks: bool) -> None:
        checks.append({"check": message, "ratio": ratio, "ok": ok, "blocks": blocks and not ok})

    judge("the partition has no rows" if rows == 0 else f"{rows} rows", None, rows > 0, True)
    if delivery.marker_problem is not None:
        judge(delivery.marker_problem, None, False, True)
    elif delivery.marker is not None:
        judge(
            f"the done marker says {delivery.marker} rows, the file has {rows}",
            None,
            rows == delivery.marker,
            True,
        )
    if delivery.stored is not None and rows:
        ratio = rows / delivery.stored if delivery.stored else float("inf")
        judge(
            f"a re-delivery of {rows} rows would replace the stored {delivery.stored} "
            f"({ratio:.2f} x, band {low}..{high})",
            ratio,
            low <= ratio <= high,
            volume.blocking and not accepted,
        )
    median = float(statistics.median(delivery.trailing)) if delivery.trailing else None
    judged = median is not None and len(delivery.trailing) >= volume.min_history
    if rows and judged:
        assert median is not None
        ratio = rows / median if median else float("inf")
        judge(
            f"{rows} rows = {ratio:.2f} x the median {median:.0f} of the last {len(delivery.trailing)} "
            f"day(s) (band {low}..{high})",
            ratio,
            low <= ratio <= high,
            volume.blocking and not accepted,
        )
    evidence = pl.DataFrame(
        checks, schema={"check": pl.String, "ratio": pl.Float64, "ok": pl.Boolean, "blocks": pl.Boolean}
    )
    failed = evidence.filter(~pl.col("ok"))
    if failed.height:
        summary = "; ".join(failed["check"].to_list())
        if accepted and not failed["blocks"].any():
            summary += " (accepted for this run by its operator)"
    elif not judged:
        summary = f"{rows} rows; {len(delivery.trailing)} trailing day(s), too few to judge the band"
    else:
        summary = f"{rows} rows, within the band {low}..{high}"
    return GateResult(
        "volume",
        failed.height == 0,
        summary,
        severity="error" if failed.height == 0 or bool(failed["blocks"].any()) else "warn",
        evidence=evidence,
        figures={
            "rows": rows,
            "trailing_median": median,
            "stored_rows": delivery.stored,
            "history": len(delivery.trailing),
        },
    )
