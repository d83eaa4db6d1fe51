"""Reading a landing file and typing it by the spec's schema.

Upstream files are text whose types cannot be trusted (CSV type inference fails on real data), so
every column is read as a string and cast by the declared type. Anything that cannot be typed is a
``LandingFileError`` naming the file, the column and the offending rows; nothing is written then.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mlplatform.core.spec import POLARS_TYPES, ColumnSpec, TableSchema

MAX_REPORTED_ROWS = 10


class LandingFileError(ValueError):
    """A landing file that cannot be typed; the message names the file, column and rows."""

    def __init__(self, path: Path | str, problem: str, rows: list[dict] | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.rows = rows or []
        super().__init__(f"{self.path}: {problem}")


def _cast(values: pl.Expr, column: ColumnSpec) -> pl.Expr:
    if column.type == "datetime":
        return values.str.to_datetime(strict=False, time_unit="us", time_zone="UTC")
    if column.type == "date":
        return values.str.to_date(strict=False)
    if column.type == "bool":
        lowered = values.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "1", "t", "yes"]))
            .then(True)
            .when(lowered.is_in(["false", "0", "f", "no"]))
            .then(False)
            .otherwise(None)
        )
    if column.type == "int":
        # Parsed as an integer first, so large values stay exact; "12.0" (a float export of an
        # integer) is accepted through the float path, "12.5" is not and is reported.
        as_float = values.cast(pl.Float64, strict=False)
        whole = pl.when(as_float == as_float.round(0)).then(as_float).cast(pl.Int64, strict=False)
        return pl.coalesce(values.cast(pl.Int64, strict=False), whole)
    return values.cast(POLARS_TYPES[column.type], strict=False)


def type_frame(text: pl.DataFrame, schema: TableSchema, path: Path | str) -> pl.DataFrame:
    """Cast an all-string frame to the schema's types; extra columns are dropped."""
    missing = [c for c in schema.columns if c not in text.columns]
    if missing:
        raise LandingFileError(path, f"missing column(s) {missing}; the file has {text.columns}")
    row_number = pl.int_range(1, pl.len() + 1).alias("_row")
    typed = text.select(
        row_number,
        *[pl.col(c).alias(f"_raw_{c}") for c in schema.columns],
        *[_cast(pl.col(c), spec).alias(c) for c, spec in schema.columns.items()],
    )
    for name in schema.columns:
        bad = typed.filter(pl.col(f"_raw_{name}").is_not_null() & pl.col(name).is_null())
        if bad.height:
            sample = bad.select("_row", pl.col(f"_raw_{name}").alias("value")).head(MAX_REPORTED_ROWS)
            raise LandingFileError(
                path,
                f"column {name!r}: {bad.height} value(s) are not of type "
                f"{schema.columns[name].type}, e.g. rows {sample['_row'].to_list()} "
                f"= {sample['value'].to_list()}",
                sample.to_dicts(),
            )
    return typed.select(list(schema.columns))


def read_landing_file(path: Path, schema: TableSchema, null_values: list[str]) -> pl.DataFrame:
    """Read one landing file (CSV or Parquet) and type it by ``schema``."""
    if not path.exists():
        raise LandingFileError(path, "file does not exist (has the upstream delivered it?)")
    if path.stat().st_size == 0:
        raise LandingFileError(path, "file is empty (0 bytes)")
    if path.suffix == ".parquet":
        text = pl.read_parquet(path).with_columns(pl.all().cast(pl.String))
    else:
        try:
            text = pl.read_csv(path, infer_schema=False, null_values=null_values)
        except pl.exceptions.PolarsError as exc:
            raise LandingFileError(path, f"not a readable CSV file: {exc}") from exc
    return type_frame(text, schema, path)
