"""Batch requests as Arrow IPC streams: typed columns in, no JSON to parse, checked in one query.

A caller that already holds its records as a data frame (polars, pandas through pyarrow, Spark)
can send them as an Arrow IPC stream (``Content-Type: application/vnd.apache.arrow.stream``): one
column per serving field, one row per record. Reading 1,000 rows takes about 0.03 ms where parsing
the same records as JSON takes 1 ms, and the contract is checked as columns (typing 0.2 ms, one
query asking whether any rule is broken 0.3 ms) instead of value by value (validation 1.1 ms and
the typed frame 0.7 ms): the request never becomes Python objects at all. Nulls, ranges and
finiteness are read from each column's null count, minimum and maximum, so one query is left for
allowed values and string lengths. Only a refused request pays for counting and naming the
offending rows of each rule.

The contract is the one the JSON records are held to (``schema.RecordValidator``), from the same
pipeline spec: exactly the serving fields, each of its declared type, no nulls where the field is
required, no value outside its range or its allowed values, no string over its length limit, no NaN
or infinity. Column types are
those a data frame library writes for the field's kind: any integer width for an int (pydantic's
strict int refuses floats and booleans, and so does this), integers or floats for a float, strings,
categoricals or enums for a str, timestamps of any unit with a time zone for a datetime (one
without is refused, as a JSON datetime without an offset is, and as ingestion refuses one). A request that breaks it is refused with
every offending field named, with the numbers of its first offending rows.
"""

from __future__ import annotations

import io
import math
from typing import NamedTuple, cast

import polars as pl

from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import POLARS_TYPES, ColumnSpec
from mlplatform.serving.schema import Rejected

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ROWS_NAMED = 10  # offending row numbers given per field


def _accepts(kind: str, dtype: pl.DataType) -> bool:
    """Whether a column of ``dtype`` can hold a field of ``kind`` without losing what it says."""
    if dtype == pl.Null:
        return True  # no value at all: the null check decides
    return {
        "int": dtype.is_integer(),
        "float": dtype.is_integer() or dtype.is_float(),
        "str": dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum),
        "bool": dtype == pl.Boolean,
        "date": dtype == pl.Date,
        # With its zone, as a JSON datetime needs its offset: a naive timestamp names no instant.
        "datetime": isinstance(dtype, pl.Datetime) and dtype.time_zone is not None,
    }[kind]


def _typed(name: str, column: ColumnSpec, dtype: pl.DataType) -> pl.Expr:
    """The column as the raw schema types it (a datetime in UTC microseconds)."""
    expression = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        expression = expression.dt.convert_time_zone("UTC")
    return expression.cast(POLARS_TYPES[column.type])


class _Rule(NamedTuple):
    problem: str
    broken: pl.Expr  # true where a row breaks the rule
    by_statistics: bool  # whether ``_broken_by_statistics`` answers it for the whole column


def _violations(name: str, column: ColumnSpec) -> list[_Rule]:
    """Each rule of the field's contract."""
    value = pl.col(name)
    numeric = column.type in ("int", "float")
    rules = []
    if not column.nullable:
        rules.append(_Rule("Field required: null is not allowed", value.is_null(), True))
    if column.type == "float":
        rules.append(_Rule("Input should be a finite number", ~value.is_finite(), True))
    if column.min is not None:
        rules.append(
            _Rule(f"Input should be greater than or equal to {column.min:g}", value < column.min, numeric)
        )
    if column.max is not None:
        rules.append(
            _Rule(f"Input should be less than or equal to {column.max:g}", value > column.max, numeric)
        )
    if column.allowed is None and column.text_limit is not None:
        rules.append(
            _Rule(
                f"String should have at most {column.text_limit} characters",
                value.str.len_chars() > column.text_limit,
                False,
            )
        )
    if column.allowed is not None:
        quoted = [repr(v) for v in column.allowed]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        rules.append(_Rule(f"Input should be {listed}", ~value.is_in(column.allowed), False))
    return [rule._replace(broken=rule.broken.fill_null(False)) for rule in rules]


def _broken_by_statistics(series: pl.Series, column: ColumnSpec) -> bool:
    """Whether a row of the typed column breaks one of its field's rules marked ``by_statistics``
    (a null where none is allowed, a float that is not finite, a number out of range), from its null
    count, minimum and maximum: no query, where asking polars whether any row breaks each rule cost
    about 15 us a rule (0.5 ms for the flight's 35). Nulls break no other rule (as ``fill_null``)."""
    nulls = series.null_count()
    if nulls == series.len():
        return bool(nulls) and not column.nullable
    if nulls and not column.nullable:
        return True
    if column.type not in ("int", "float"):
        return False
    if column.type == "float" and not all(
        math.isfinite(cast(float, v)) for v in (series.nan_min(), series.nan_max())
    ):
        return True  # NaN poisons both; an infinity is the minimum or the maximum
    low, high = cast(float, series.min()), cast(float, series.max())  # ints compared exactly, as ints
    return (column.min is not None and low < column.min) or (column.max is not None and high > column.max)


def _first_broken(rules: list[_Rule]) -> list[tuple[str, pl.Expr]]:
    """Each rule true only where no earlier rule of the field is broken: a row is named for the
    first rule it breaks, as the JSON path names it once (infinity is not finite; it is not also
    above the maximum)."""
    first, earlier = [], pl.lit(False)
    for problem, broken, _ in rules:
        first.append((problem, broken & ~earlier))
        earlier = earlier | broken
    return first


def ipc_stream(frame: pl.DataFrame) -> bytes:
    """A frame as the body of an Arrow batch request (for clients: what the service reads)."""
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer)
    return buffer.getvalue()


class ArrowRecords:
    """Arrow IPC request bodies to the typed request frame, or ``Rejected`` naming the problem."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.columns = {name: spec.schema_.columns[name] for name in spec.serving_columns}
        rules = {name: _violations(name, column) for name, column in self.columns.items()}
        self._queried = [  # the rules statistics do not answer
            rule.broken.any().alias(f"{name} {n}")
            for name, field in rules.items()
            for n, rule in enumerate(field)
            if not rule.by_statistics
        ]
        self._checks = [
            (name, problem, broken)
            for name, field in rules.items()
            for problem, broken in _first_broken(field)
        ]
        self._counts = [broken.sum().alias(str(n)) for n, (_, _, broken) in enumerate(self._checks)]

    def frame(self, body: bytes, max_batch: int) -> pl.DataFrame:
        try:
            sent = pl.read_ipc_stream(io.BytesIO(body))
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise Rejected(400, f"malformed Arrow IPC stream: {exc}"[:500]) from None
        schema = sent.schema  # built anew on every access
        self._check_columns(schema)
        if sent.height == 0:
            raise Rejected(422, "the batch is empty: send at least one record")
        if sent.height > max_batch:
            raise Rejected(413, f"{sent.height} records exceed the maximum batch of {max_batch}")
        try:
            typed = sent.select(_typed(name, column, schema[name]) for name, column in self.columns.items())
        except pl.exceptions.InvalidOperationError as exc:  # an unsigned 64-bit value above 2**63
            raise Rejected(422, f"invalid record(s): {str(exc).splitlines()[0]}"[:500]) from None
        self._check_values(typed)
        return typed

    def _check_columns(self, schema: pl.Schema) -> None:
        """Every field present with a type that can hold it, and nothing else."""
        problems = [
            {"field": name, "problem": "Field required"} for name in self.columns if name not in schema
        ]
        problems += [
            {"field": name, "problem": "Extra inputs are not permitted"}
            for name in schema
            if name not in self.columns
        ]
        problems += [
            {"field": name, "problem": f"a {schema[name]} column cannot hold this {column.type} field"}
            for name, column in self.columns.items()
            if name in schema and not _accepts(column.type, schema[name])
        ]
        if problems:
            raise Rejected(422, "invalid record(s)", fields=problems)

    def broken(self, typed: pl.DataFrame) -> bool:
        """Whether any row breaks any rule: each column's statistics, then one query for the rules
        they do not answer (allowed values, string lengths)."""
        if any(_broken_by_statistics(typed.get_column(n), c) for n, c in self.columns.items()):
            return True
        return bool(self._queried) and any(typed.select(self._queried).row(0))

    def _check_values(self, typed: pl.DataFrame) -> None:
        """A cheap pass asks whether any row breaks any rule (``broken``); only a request that does
        pays for counting and naming the rows of each rule."""
        if not self.broken(typed):
            return
        counts = typed.select(self._counts).row(0)
        problems = []
        for (name, problem, broken), count in zip(self._checks, counts, strict=True):
            if count:
                rows = typed.select(pl.arg_where(broken).head(ROWS_NAMED)).to_series().to_list()
                problems.append({"field": name, "problem": problem, "rows": rows, "count": count})
        if problems:
            raise Rejected(422, "invalid record(s)", fields=problems)
