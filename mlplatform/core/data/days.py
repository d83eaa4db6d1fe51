"""Time semantics: typing timestamps without guessing, each row's day, and columns that must agree.

A timestamp is read only in a way that cannot be misread: ISO 8601 with its UTC offset, or the
column's declared strptime format (in its declared zone when the format carries no offset).
``02/03/2013`` is 2 March in one country and 3 February in another, so without a format it is
refused, never guessed.

A row's day is either a SQL expression over its columns (``partition_expr``) or the local date of
a timestamp in a named zone (``day: {column, timezone}``): the same rule files a landing row
under its partition, splits history in replay, and gives the prediction service each request's
event day, so the day is always derived, never taken from a redundant field a client sends.
"""

from __future__ import annotations

import functools
import re

import polars as pl

from mlplatform.core.table_spec import ColumnSpec, DaySpec, TableSchema

ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$")
ISO_DATE = "%Y-%m-%d"
UTC = pl.Datetime("us", "UTC")


def parse_datetime(values: pl.Expr, column: ColumnSpec) -> pl.Expr:
    """Text to UTC microseconds by the column's rule; null where a value does not follow it."""
    if column.format is None:
        iso = values.str.contains(ISO_WITH_OFFSET.pattern)
        parsed = values.str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
        return pl.when(iso).then(parsed).otherwise(None)
    parsed = values.str.to_datetime(format=column.format, strict=False, time_unit="us")
    if "%z" in column.format:
        return parsed.dt.convert_time_zone("UTC")
    assert column.timezone is not None  # the spec requires it for a format without %z
    local = parsed.dt.replace_time_zone(column.timezone, ambiguous="null", non_existent="null")
    return local.dt.convert_time_zone("UTC")


def parse_date(values: pl.Expr, column: ColumnSpec) -> pl.Expr:
    return values.str.to_date(format=column.format or ISO_DATE, strict=False)


def expected_form(column: ColumnSpec) -> str:
    """How a value of the column must look, for error messages."""
    if column.format:
        return f"a {column.type} in the format {column.format!r}"
    if column.type == "datetime":
        return "an ISO 8601 datetime with its UTC offset (e.g. 2013-01-01T10:00:00Z)"
    return "an ISO date (YYYY-MM-DD)"


@functools.cache
def _day_expression(partition_expr: str) -> pl.Expr:
    """The parsed partition expression; parsing SQL costs more than evaluating it on one row."""
    return pl.sql_expr(partition_expr).cast(pl.String).alias("day")


def local_date(column: str, timezone: str | None) -> pl.Expr:
    """The local date (ISO text) of a UTC datetime column, or a date column's own date."""
    values = pl.col(column)
    if timezone is not None:
        values = values.dt.convert_time_zone(timezone)
    return values.dt.date().cast(pl.String).alias("day")


def day_columns(partition_expr: str | None, day: DaySpec | None) -> list[str]:
    """The columns a row's day is derived from."""
    if day is not None:
        return [day.column]
    return pl.sql_expr(partition_expr).meta.root_names() if partition_expr else []


def row_days(
    frame: pl.DataFrame, partition_expr: str | None, day: DaySpec | None, schema: TableSchema
) -> pl.DataFrame:
    """Each row's day as an ISO string (a one-column frame ``day``), null where it has none.

    A text column (replay's untyped history) is typed by its column rule first. A SQL function
    such as DATE() fails for a whole frame on one bad row (month 13, February 30); only then is
    the expression evaluated row by row, so a bad row is evidence, not a crash.
    """
    if day is not None:
        column = schema.columns[day.column]
        source = pl.col(day.column)
        if frame.schema[day.column] == pl.String:
            source = (
                parse_datetime(source, column) if column.type == "datetime" else parse_date(source, column)
            )
        return frame.select(source.alias(day.column)).select(local_date(day.column, day.timezone))
    if partition_expr is None:
        raise ValueError("a table without a day rule has no row days")
    expr = _day_expression(partition_expr)
    try:
        return frame.select(expr)
    except pl.exceptions.PolarsError:
        values: list[str | None] = []
        for index in range(frame.height):
            try:
                values.append(frame.slice(index, 1).select(expr).item())
            except pl.exceptions.PolarsError:
                values.append(None)
        return pl.DataFrame({"day": values}, schema={"day": pl.String})


def describe_rule(partition_expr: str | None, day: DaySpec | None) -> str:
    if day is not None:
        zone = f" in {day.timezone}" if day.timezone else ""
        return f"local date of {day.column}{zone}"
    return str(partition_expr)


def _part(timestamp: pl.Expr, part: str) -> pl.Expr:
    if part == "date":
        return timestamp.dt.date()
    return getattr(timestamp.dt, part)().cast(pl.Int64)


def _consistency_checks(frame: pl.DataFrame, schema: TableSchema) -> list[tuple[str, str, str, pl.Expr]]:
    """(timestamp, part, column, disagreement mask) for each declared part present in ``frame``."""
    checks = []
    for name, column in schema.columns.items():
        if name not in frame.columns:
            continue
        local = pl.col(name).dt.convert_time_zone(column.timezone or "UTC")
        for part, other in column.consistent_with.items():
            if other in frame.columns:
                value, expected = pl.col(other), _part(local, part)
                mask = pl.col(name).is_not_null() & value.is_not_null() & (value != expected)
                checks.append((name, part, other, mask))
    return checks


def inconsistent_rows(frame: pl.DataFrame, schema: TableSchema) -> tuple[list[str], list[int]]:
    """The columns declared consistent with a timestamp, and the rows (0-based) where any disagrees."""
    checks = _consistency_checks(frame, schema)
    if not checks:
        return [], []
    columns = list(dict.fromkeys(c for t, _, o, _ in checks for c in (t, o)))
    mask = pl.any_horizontal([m for *_, m in checks])
    return columns, frame.select(pl.arg_where(mask)).to_series().to_list()


def inconsistencies(frame: pl.DataFrame, schema: TableSchema) -> list[dict]:
    """Rows where a column disagrees with the timestamp part it is declared to repeat.

    One record per (column, timestamp): the check, the first offending values and rows, the count.
    """
    problems = []
    for name, part, other, mask in _consistency_checks(frame, schema):
        zone = schema.columns[name].timezone
        expected = _part(pl.col(name).dt.convert_time_zone(zone or "UTC"), part)
        bad = frame.with_row_index("_row", offset=1).filter(mask)
        if not bad.height:
            continue
        sample = bad.head(5).select("_row", pl.col(other).alias("_value"), expected.alias("_expected"))
        problems.append(
            {
                "column": other,
                "check": f"= local {part} of {name} ({zone})",
                "failure_case": ", ".join(
                    f"{v} (expected {e})"
                    for v, e in zip(sample["_value"].to_list(), sample["_expected"].to_list(), strict=True)
                ),
                "count": bad.height,
                "rows": ", ".join(str(r) for r in sample["_row"].to_list()),
            }
        )
    return problems
