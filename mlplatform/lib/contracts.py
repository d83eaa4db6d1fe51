"""Data contracts: a pandera model built from a table schema in the spec, and its failure report.

``validate`` returns the failure cases as a small polars frame (column, check, value, count) so
the asset check can put them in its metadata; it never raises for bad data.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from mlplatform.lib.spec import POLARS_TYPES, TableSchema

FAILURE_COLUMNS = {"column": pl.String, "check": pl.String, "failure_case": pl.String, "count": pl.Int64}


def build_schema(name: str, schema: TableSchema) -> pa.DataFrameSchema:
    columns = {}
    for column_name, column in schema.columns.items():
        checks = []
        if column.min is not None:
            checks.append(pa.Check.ge(column.min))
        if column.max is not None:
            checks.append(pa.Check.le(column.max))
        if column.allowed is not None:
            checks.append(pa.Check.isin(column.allowed))
        columns[column_name] = pa.Column(
            POLARS_TYPES[column.type], checks=checks, nullable=column.nullable, coerce=False
        )
    # Primary-key uniqueness is its own gate (data_gates.primary_key_gate), with better evidence.
    return pa.DataFrameSchema(columns, name=name, strict=False)


def validate(contract: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Every contract violation in ``frame``, grouped by column, check and offending value."""
    try:
        contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        return (
            cases.with_columns(
                pl.col("column").cast(pl.String).fill_null("<table>"),
                pl.col("check").cast(pl.String),
                pl.col("failure_case").cast(pl.String).fill_null("null"),
            )
            .group_by("column", "check", "failure_case")
            .agg(pl.len().cast(pl.Int64).alias("count"))
            .sort("count", "column", descending=[True, False])
        )
    return pl.DataFrame(schema=FAILURE_COLUMNS)


def describe(failures: pl.DataFrame) -> str:
    """One line for logs and run failures: how many violations and the most frequent one."""
    if failures.height == 0:
        return "no violations"
    first = failures.row(0, named=True)
    return (
        f"{int(failures['count'].sum())} violation(s); most frequent: column {first['column']!r} "
        f"failed {first['check']} (e.g. {first['failure_case']}, {first['count']}x)"
    )
