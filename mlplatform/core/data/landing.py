"""Reading a landing file and typing it by the spec's schema, with every problem in one report.

Upstream files are text whose types cannot be trusted (CSV type inference fails on real data), so
every column is read as a string and cast by the declared type. A blank value (``""``) is a null:
an empty ``dest`` is a missing destination, not a destination. Timestamps follow their column's
time rule (``days.parse_datetime``). A column the schema does not name is refused or stored as
text, as the table's ``extra_columns`` says, never dropped silently.

``land_file`` reports every problem of the file at once (each missing, extra or badly typed column
with its count and first rows; the line and byte of a parse or UTF-8 error) so one delivery is
fixed in one round; cells that could not be typed become nulls in the returned frame so the
contract can still judge the other columns. ``read_landing_file`` is the strict form for callers
that want the frame or an error.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import polars.selectors as cs

from mlplatform.core.data.contracts import FAILURE_COLUMNS, FIRST_ROWS, describe_each
from mlplatform.core.data.days import expected_form, parse_date, parse_datetime
from mlplatform.core.table_spec import POLARS_TYPES, ColumnSpec, TableSchema


class LandingFileError(ValueError):
    """A landing file that cannot be typed; the message names the file and every problem."""

    def __init__(self, path: Path | str, problem: str, problems: pl.DataFrame | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.problems = problems if problems is not None else _problem("<file>", "readable", problem)
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Landed:
    """A typed file (None when it could not be parsed at all) and its problems (empty if none)."""

    path: Path
    frame: pl.DataFrame | None
    problems: pl.DataFrame

    @property
    def bad_columns(self) -> list[str]:
        """Columns that are missing, extra or could not be typed: the contract skips them."""
        return [c for c in self.problems["column"].unique(maintain_order=True).to_list() if c != "<file>"]

    def message(self) -> str:
        """Every problem on one line: the file, then each column with its count and first rows."""
        return f"{self.path}: {describe_each(self.problems)}"


def _problem(
    column: str, check: str, text: str, count: int = 1, rows: list[int] | None = None
) -> pl.DataFrame:
    record = {
        "column": column,
        "check": check,
        "failure_case": text,
        "count": count,
        "rows": ", ".join(str(r) for r in rows) if rows else None,
    }
    return pl.DataFrame([record], schema=FAILURE_COLUMNS)


def _cast(values: pl.Expr, column: ColumnSpec) -> pl.Expr:
    if column.type == "datetime":
        return parse_datetime(values, column)
    if column.type == "date":
        return parse_date(values, column)
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


def _expected(column: ColumnSpec) -> str:
    return expected_form(column) if column.type in ("date", "datetime") else f"of type {column.type}"


def type_frame(
    text: pl.DataFrame, schema: TableSchema, path: Path | str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cast an all-string frame to the schema's types: the typed frame and every problem found.

    A missing column is all nulls in the typed frame, an untypeable cell a null; both are problems.
    """
    problems = []
    missing = [c for c in schema.columns if c not in text.columns]
    problems += [_problem(c, "column present", f"missing; the file has {text.columns}") for c in missing]
    extra = [c for c in text.columns if c not in schema.columns]
    if schema.extra_columns == "refuse":
        problems += [
            _problem(c, "declared in the schema", "not in the schema (extra_columns: refuse)") for c in extra
        ]
    blank = [
        pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
        for c in text.columns
    ]
    text = text.with_columns(blank).with_columns([pl.lit(None, pl.String).alias(c) for c in missing])
    row_number = pl.int_range(1, pl.len() + 1).alias("_row")
    typed = text.select(
        row_number,
        *[pl.col(c).alias(f"_raw_{c}") for c in schema.columns],
        *[_cast(pl.col(c), spec).alias(c) for c, spec in schema.columns.items()],
    )
    for name, spec in schema.columns.items():
        if name in missing:
            continue
        bad = typed.filter(pl.col(f"_raw_{name}").is_not_null() & pl.col(name).is_null())
        if bad.height:
            sample = bad.select("_row", pl.col(f"_raw_{name}").alias("value")).head(FIRST_ROWS)
            problems.append(
                _problem(
                    name,
                    _expected(spec),
                    f"not {_expected(spec)}, e.g. {sample['value'].to_list()}",
                    bad.height,
                    sample["_row"].to_list(),
                )
            )
    kept = [c for c in extra if schema.extra_columns == "ignore"]
    frame = typed.select(*schema.columns, *[text.get_column(c) for c in kept])
    found = pl.concat(problems) if problems else pl.DataFrame(schema=FAILURE_COLUMNS)
    return frame, found


def _utf8_error(payload: bytes) -> str | None:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = payload.count(b"\n", 0, exc.start) + 1
        return f"not UTF-8 at byte {exc.start} (line {line}): {exc.reason} {payload[exc.start : exc.end]!r}"
    return None


def _ragged_line(payload: bytes) -> str | None:
    """The first line whose field count differs from the header's, found only after polars failed."""
    reader = csv.reader(io.StringIO(payload.decode("utf-8")))
    header = next(reader, [])
    for record in reader:
        if len(record) != len(header):
            return f"line {reader.line_num} has {len(record)} field(s), the header {len(header)}"
    return None


def _text(path: Path, null_values: list[str]) -> pl.DataFrame:
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise LandingFileError(path, f"not a readable Parquet file: {exc}") from exc
        # A typed timestamp is unambiguous only with its zone: written as ISO text with the offset.
        zoned = cs.datetime(time_zone="*")
        return frame.with_columns(
            zoned.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"),
            (~zoned).cast(pl.String),
        )
    payload = path.read_bytes()
    if problem := _utf8_error(payload):
        raise LandingFileError(path, problem)
    try:
        return pl.read_csv(payload, infer_schema=False, null_values=null_values)
    except pl.exceptions.PolarsError as exc:
        where = _ragged_line(payload)
        raise LandingFileError(path, f"not a readable CSV file: {where or exc}") from exc


def land_file(path: Path, schema: TableSchema, null_values: list[str]) -> Landed:
    """Read one landing file (CSV or Parquet) and type it by ``schema``, reporting every problem."""
    try:
        if not path.exists():
            raise LandingFileError(path, "file does not exist (has the upstream delivered it?)")
        if path.stat().st_size == 0:
            raise LandingFileError(path, "file is empty (0 bytes)")
        text = _text(path, null_values)
    except LandingFileError as exc:
        return Landed(path, None, exc.problems)
    frame, problems = type_frame(text, schema, path)
    return Landed(path, frame, problems)


def read_landing_file(path: Path, schema: TableSchema, null_values: list[str]) -> pl.DataFrame:
    """The typed file, or a ``LandingFileError`` naming every problem."""
    landed = land_file(path, schema, null_values)
    if landed.frame is None or landed.problems.height:
        raise LandingFileError(path, landed.message().removeprefix(f"{path}: "), landed.problems)
    return landed.frame
