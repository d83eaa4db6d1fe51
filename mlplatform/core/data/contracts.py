"""Data contracts: a pandera model built from a table schema in the spec, and its failure report.

``validate`` returns the failure cases as a small polars frame (column, check, value, count) so
the asset check can put them in its metadata; it never raises for bad data.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandera.polars as pa
import polars as pl

from mlplatform.core.spec import POLARS_TYPES, TableSchema

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


def _summarize(cases: pl.DataFrame) -> pl.DataFrame:
    return (
        cases.group_by("column", "check", "failure_case")
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort("count", "column", descending=[True, False])
    )


def validate_days(
    contract: pa.DataFrameSchema, frames: Mapping[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """The violations of each frame, from one pandera call over all of them.

    pandera's fixed cost per call (about 40 ms) dwarfs its cost per row, so a run over many
    partitions validates their concatenation once and maps row failures back by row index.
    Table-level failures (a dtype, a missing column) have no row and belong to every frame.
    """
    if not frames:
        return {}
    days = list(frames)
    owner = pl.Series("day", [d for d in days for _ in range(frames[d].height)], dtype=pl.String)
    try:
        contract.validate(pl.concat(list(frames.values())), lazy=True)
        return {d: pl.DataFrame(schema=FAILURE_COLUMNS) for d in days}
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.with_columns(
            pl.col("column").cast(pl.String).fill_null("<table>"),
            pl.col("check").cast(pl.String),
            pl.col("failure_case").cast(pl.String).fill_null("null"),
        )
    rows = cases.filter(pl.col("index").is_not_null())
    rows = rows.with_columns(owner.gather(rows["index"].cast(pl.Int64)).alias("day"))
    table_level = cases.filter(pl.col("index").is_null())
    return {
        d: _summarize(pl.concat([rows.filter(pl.col("day") == d).drop("day"), table_level])) for d in days
    }


def validate(contract: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Every contract violation in ``frame``, grouped by column, check and offending value."""
    return validate_days(contract, {"frame": frame})["frame"]


def describe(failures: pl.DataFrame) -> str:
    """One line for logs and run failures: how many violations and the most frequent one."""
    if failures.height == 0:
        return "no violations"
    first = failures.row(0, named=True)
    return (
        f"{int(failures['count'].sum())} violation(s); most frequent: column {first['column']!r} "
        f"failed {first['check']} (e.g. {first['failure_case']}, {first['count']}x)"
    )
