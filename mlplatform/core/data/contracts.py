"""Data contracts: a pandera model built from a table schema in the spec, and its failure report.

``validate`` returns the failure cases as a small polars frame (column, check, value, count and
the first offending rows, numbered from 1 as data rows) so the asset check can put them in its
metadata; it never raises for bad data.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandera.polars as pa
import polars as pl

from mlplatform.core.table_spec import POLARS_TYPES, TableSchema

FAILURE_COLUMNS = {
    "column": pl.String,
    "check": pl.String,
    "failure_case": pl.String,
    "count": pl.Int64,
    "rows": pl.String,
}
FIRST_ROWS = 5


def _finite(data: pa.PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_finite())


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
        if column.type == "float" and not column.allow_non_finite:
            # NaN compares above every bound in polars, so a range alone would let it through.
            checks.append(pa.Check(_finite, name="finite"))
        columns[column_name] = pa.Column(
            POLARS_TYPES[column.type], checks=checks, nullable=column.nullable, coerce=False
        )
    # Primary-key uniqueness is its own gate (data_gates.primary_key_gate), with better evidence.
    return pa.DataFrameSchema(columns, name=name, strict=False)


def _summarize(cases: pl.DataFrame) -> pl.DataFrame:
    """One row per column, check and value: how often, and the first rows (1-based) it is in."""
    rows = pl.col("row").drop_nulls().sort().head(FIRST_ROWS).cast(pl.String).str.join(", ")
    return (
        cases.group_by("column", "check", "failure_case")
        .agg(pl.len().cast(pl.Int64).alias("count"), rows.alias("rows"))
        .with_columns(pl.col("rows").replace("", None))
        .sort("count", "column", "failure_case", descending=[True, False, False])
        .select(list(FAILURE_COLUMNS))
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
    row = pl.Series("row", [n for d in days for n in range(1, frames[d].height + 1)], dtype=pl.Int64)
    try:
        # Diagonal: days of a table that keeps undeclared columns may differ in those columns.
        contract.validate(pl.concat(list(frames.values()), how="diagonal"), lazy=True)
        return {d: pl.DataFrame(schema=FAILURE_COLUMNS) for d in days}
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases.with_columns(
            pl.col("column").cast(pl.String).fill_null("<table>"),
            pl.col("check").cast(pl.String),
            pl.col("failure_case").cast(pl.String).fill_null("null"),
        )
    rows = cases.filter(pl.col("index").is_not_null())
    index = rows["index"].cast(pl.Int64)
    rows = rows.with_columns(owner.gather(index).alias("day"), row.gather(index).alias("row"))
    table_level = cases.filter(pl.col("index").is_null()).with_columns(pl.lit(None, pl.Int64).alias("row"))
    return {
        d: _summarize(pl.concat([rows.filter(pl.col("day") == d).drop("day"), table_level])) for d in days
    }


def validate(contract: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    """Every contract violation in ``frame``, grouped by column, check and offending value."""
    return validate_days(contract, {"frame": frame})["frame"]


def describe(failures: pl.DataFrame) -> str:
    """One line for logs and run failures: how many violations, every column with its count, and
    the most frequent one with its first rows."""
    if failures.height == 0:
        return "no violations"
    by_column = failures.group_by("column", maintain_order=True).agg(pl.col("count").sum())
    columns = ", ".join(f"{c!r} ({n})" for c, n in by_column.iter_rows())
    first = failures.row(0, named=True)
    where = f" at row(s) {first['rows']}" if first.get("rows") else ""
    return (
        f"{int(failures['count'].sum())} violation(s) in {by_column.height} column(s): {columns}; "
        f"most frequent: column {first['column']!r} failed {first['check']} "
        f"(e.g. {first['failure_case']}, {first['count']}x{where})"
    )


def describe_each(failures: pl.DataFrame) -> str:
    """Every row of a failure report on one line: each column with its count, first rows and what
    is wrong (for a file's typing problems, where each column has one)."""
    parts = []
    for r in failures.iter_rows(named=True):
        if r["column"] == "<file>":
            parts.append(r["failure_case"])
            continue
        counted = f" ({r['count']} value(s), row(s) {r['rows']})" if r["rows"] else ""
        parts.append(f"column {r['column']!r}{counted}: {r['failure_case']}")
    return "; ".join(parts)
