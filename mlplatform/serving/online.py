"""The online side of the feature store: reference tables in memory, the pipeline's own features.

Static tables are loaded whole, daily ones per day, each cached with the warehouse's version token
of its file, compared again at most once a second (one ``stat`` locally, one HEAD on object
storage): a partition is read when first needed, and one that lands or is replaced later is seen
within a second. Requests are typed by the raw schema and go through ``compute_features``, the
very function the ``features`` asset uses, so what the model sees online is what it was trained on. A day without a reference partition (weather not yet
delivered) gives null features, which the model treats as missing.

Reference tables are filtered per request. The spec declares the ``key`` each reference is looked
up by; when the request carries every key column with the same type and the table has at least
``filter_min_rows`` rows, each loaded version of it is indexed once (key values to row numbers) and
the feature function is handed only the rows whose key matches a request row, in their stored
order. A function that looks rows up by that key (what ``key`` declares) computes the same features
from those rows as from the whole table, and its joins and de-duplications stop growing with the
table (a join against 30,000 rows costs ten times one against 100). Small tables are passed whole:
selecting their rows costs more than it saves. So is a table whose key the request does not carry
(airports by ``faa`` for flights), and any table to a request with more rows than a tenth of the
table's: gathering the matching rows in Python then costs more than the join saves (flights
against 3,322 planes, features of 400 flights: 2.6 ms filtered, 1.9 ms whole; of 200: 1.7 and 1.8).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from mlplatform.core.data.days import day_columns, inconsistent_rows, row_days
from mlplatform.core.data.timestamps import UTC_MICROSECONDS, epoch_microseconds, typed_series
from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.features.compute import compute_features
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import POLARS_TYPES

FILTER_MIN_ROWS = 1000  # below this, a join over the whole table costs less than selecting its rows
FILTER_MAX_SHARE = 0.1  # request rows per table row above which the whole table is passed
RECHECK_SECONDS = 1.0  # how often a cached table's file is compared with the warehouse's
REMEMBERED_VALUES = 100_000  # distinct values remembered per per-row rule (event day, consistency)


def _keys(
    rows: pl.DataFrame | dict[str, list], columns: list[str], schema: dict[str, pl.DataType]
) -> dict[str, list]:
    """The columns' values (validated request columns or a typed frame) as keys that hash and
    compare fast: a datetime as its UTC microseconds. Two equal aware datetimes with distinct zone
    objects, as pydantic parses them, compare in 6 us (both zones are asked for their offsets),
    two integers in 0.07 us."""
    keyed = {}
    for c in columns:
        utc = schema[c] == UTC_MICROSECONDS
        if isinstance(rows, pl.DataFrame):
            keyed[c] = _epoch_us(rows[c]) if utc else rows[c].to_list()
        else:
            keyed[c] = epoch_microseconds(rows[c]) if utc else rows[c]
    return keyed


def _utc_micros(series: pl.Series) -> np.ndarray:
    """A datetime column without nulls as UTC microseconds (int64) through numpy."""
    return series.to_numpy().astype("datetime64[us]").view("int64")


def _epoch_us(series: pl.Series) -> list[int | None]:
    """A datetime column as UTC microseconds through numpy: 4 us for one row and 30 for 1,000,
    where a polars expression costs 70-180 us and Python datetimes 4 ms for 1,000. With nulls (NaT
    in numpy), from Python's datetimes."""
    if series.null_count():
        return epoch_microseconds(series.to_list())
    return _utc_micros(series).tolist()


def _distinct(frame: pl.DataFrame, columns: list[str]) -> tuple[dict[str, list], np.ndarray] | None:
    """The distinct rows of a typed frame's ``columns``, keyed as ``_keys`` keys them, and the number
    of each row's distinct row; found by numpy over the rows' bytes (0.1 ms for 1,000 rows, where
    keying and remembering each row in Python took 0.4: a batch holds a few dozen distinct hours).
    None when a column holds a null, or is neither an Int64 nor a UTC datetime: those rows are keyed
    one by one."""
    series = [frame.get_column(c) for c in columns]
    if not series or any(s.null_count() or s.dtype not in (pl.Int64, UTC_MICROSECONDS) for s in series):
        return None
    values = np.column_stack(
        [_utc_micros(s) if s.dtype == UTC_MICROSECONDS else s.to_numpy() for s in series]
    ).astype("int64", copy=False)
    rows = np.ascontiguousarray(values).view(np.dtype((np.void, 8 * len(columns)))).ravel()
    _, first, row_of = np.unique(rows, return_index=True, return_inverse=True)
    return dict(zip(columns, values[first].T.tolist(), strict=True)), row_of


def _typed(name: str, values: list, dtype: pl.DataType) -> pl.Series:
    if dtype == UTC_MICROSECONDS:  # keyed as UTC microseconds already
        return pl.Series(name, values, pl.Int64).cast(UTC_MICROSECONDS)
    return typed_series(name, values, dtype)


class _Remembered:
    """A per-row rule over a few request columns (the event day, the consistency of a timestamp's
    parts), evaluated by polars once per distinct tuple of their values and then remembered, at most
    ``REMEMBERED_VALUES`` tuples (then forgotten all at once). Requests come for a few days and
    hours, and a polars query costs about 0.4 ms whatever its rows, more than validating a record:
    evaluated per request it was most of the event loop's work (issue 19)."""

    def __init__(
        self, columns: list[str], schema: dict[str, pl.DataType], rule: Callable[[pl.DataFrame], list]
    ) -> None:
        self.columns, self._schema, self._rule = columns, schema, rule
        self._known: dict[tuple, Any] = {}

    def __call__(self, keyed: dict[str, list]) -> list:
        """The rule's value for each row of ``keyed`` (``_keys``: every column of the rule)."""
        keys = list(zip(*(keyed[c] for c in self.columns), strict=True))
        known = self._known  # one reference: the event loop and the scoring thread both call this
        new = [key for key in dict.fromkeys(keys) if key not in known]
        if new:
            if len(known) + len(new) > REMEMBERED_VALUES:
                known, new = {}, list(dict.fromkeys(keys))
            unseen = pl.DataFrame(
                [
                    _typed(c, list(column), self._schema[c])
                    for c, column in zip(self.columns, zip(*new, strict=True), strict=True)
                ]
            )
            known.update(zip(new, self._rule(unseen), strict=True))
            self._known = known
        return [known[key] for key in keys]


class DayCheck(NamedTuple):
    """``OnlineFeatures.undated``'s finding."""

    fields: list[str]  # the columns the event day and the consistency rule read
    rows: list[int]  # the rows refused: no day, or a field that disagrees with the timestamp
    days: list[str | None] | None  # each row's event day; None when the day rule reads no column


@dataclass
class _Loaded:
    """One version of a reference table's file, and its key index when filtering it pays."""

    version: str | None  # the warehouse's token for the file (None: no such partition yet)
    frame: pl.DataFrame
    rows: dict[tuple, list[int]] | None
    checked_at: float  # time.monotonic() when the version was last compared with the warehouse


class OnlineFeatures:
    """Features for validated request rows; ``loaded`` holds the reference tables in memory."""

    def __init__(
        self,
        spec: PipelineSpec,
        store: ParquetWarehouse,
        filter_min_rows: int = FILTER_MIN_ROWS,
        recheck_seconds: float = RECHECK_SECONDS,
        filter_max_share: float = FILTER_MAX_SHARE,
    ) -> None:
        self.spec = spec
        self.store = store
        self.filter_min_rows = filter_min_rows
        self.filter_max_share = filter_max_share
        self.recheck_seconds = recheck_seconds
        self.loaded: dict[tuple[str, str | None], _Loaded] = {}
        self._lock = threading.Lock()
        self.raw_schema = {c: POLARS_TYPES[self.spec.schema_.columns[c].type] for c in spec.serving_columns}
        self.lookup_keys = {
            name: ref.key
            for name, ref in spec.references.items()
            if all(self._exact_key(c, ref.schema_.columns[c].type) for c in ref.key)
        }
        self._day_columns = day_columns(spec.source.partition_expr, spec.source.day)
        self._days = (
            _Remembered(self._day_columns, self.raw_schema, self._row_days) if self._day_columns else None
        )
        # The columns ingestion's consistency rule reads, as it finds them in a request's frame.
        consistent, _ = inconsistent_rows(pl.DataFrame(schema=self.raw_schema), spec.schema_)
        self._disagree = _Remembered(consistent, self.raw_schema, self._disagreeing) if consistent else None

    def _exact_key(self, column: str, reference_type: str) -> bool:
        """The request carries the column with the reference's type, and its values compare in Python
        as in a polars join (floats do not: NaN and -0.0)."""
        return (
            column in self.raw_schema
            and self.spec.schema_.columns[column].type == reference_type
            and reference_type != "float"
        )

    def _table(self, name: str, day: str | None) -> _Loaded:
        cached = self.loaded.get((name, day))
        now = time.monotonic()
        if cached is not None and now - cached.checked_at < self.recheck_seconds:
            return cached
        version = self.store.modified(self.spec.name, name, day)
        if cached is not None and cached.version == version:
            cached.checked_at = now
            return cached
        schema = self.spec.references[name].schema_
        frame = (
            self.store.read(self.spec.name, name, day)
            if version is not None
            else pl.DataFrame(schema={c: POLARS_TYPES[s.type] for c, s in schema.columns.items()})
        )
        rows = None
        if name in self.lookup_keys and frame.height >= self.filter_min_rows:
            index = defaultdict(list)
            key_values = zip(*(frame.get_column(c).to_list() for c in self.lookup_keys[name]), strict=True)
            for number, value in enumerate(key_values):
                index[value].append(number)
            rows = dict(index)
        loaded = _Loaded(version, frame, rows, now)
        with self._lock:
            self.loaded[(name, day)] = loaded
        return loaded

    def references(self, raw: pl.DataFrame, days: list[str]) -> dict[str, pl.DataFrame]:
        """Each reference table for these request rows (daily ones for the given days): only the rows
        matching the request's keys where the table is indexed and the request is small beside it,
        the whole table otherwise."""
        refs = {}
        for name, ref in self.spec.references.items():
            versions = (
                [self._table(name, d) for d in days]
                if ref.partitioned and days
                else [self._table(name, None)]
            )
            wanted: set[tuple] | None = None
            parts = []
            for version in versions:
                if version.rows is None or raw.height > version.frame.height * self.filter_max_share:
                    parts.append(version.frame)
                    continue
                if wanted is None:
                    wanted = set(
                        zip(*(raw.get_column(c).to_list() for c in self.lookup_keys[name]), strict=True)
                    )
                parts.append(
                    version.frame[sorted(n for value in wanted for n in version.rows.get(value, ()))]
                )
            # Diagonal: a reference that keeps undeclared columns has days with and without them.
            refs[name] = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal")
        return refs

    def frame(self, columns: dict[str, list]) -> pl.DataFrame:
        """Validated request columns as a frame typed by the raw schema."""
        return pl.DataFrame(
            [typed_series(name, columns[name], dtype) for name, dtype in self.raw_schema.items()]
        )

    def event_days(self, raw: pl.DataFrame | dict[str, list]) -> list[str | None]:
        """Each row's event day (the partition its label will land in), derived by the source's day
        rule from the request's own columns (the local date of its timestamp, or the partition
        expression), remembered per value of those columns. ``raw``: the typed frame, or validated
        request columns."""
        if self._days is None:  # a constant expression
            return self._row_days(raw if isinstance(raw, pl.DataFrame) else self.frame(raw))
        return self._days(_keys(raw, self._day_columns, self.raw_schema))

    def undated(self, columns: pl.DataFrame | dict[str, list]) -> DayCheck:
        """The columns the event day is computed from or that must agree with the timestamp, and the
        rows (validated request columns or an Arrow frame) where every day input has a value and
        yet no day comes out (month 2, day 31 under a partition expression), or where a column
        declared consistent with the timestamp disagrees with it (the same rule as ingestion); with
        each row's event day as ``event_days`` gives it, computed on the way (None when the day rule
        reads no column), which the scorer then takes instead of computing it again."""
        fields = list(dict.fromkeys(self._day_columns + (self._disagree.columns if self._disagree else [])))
        distinct = _distinct(columns, fields) if isinstance(columns, pl.DataFrame) else None
        if distinct is None:
            return DayCheck(fields, *self._verdicts(_keys(columns, fields, self.raw_schema)))
        keyed, row_of = distinct  # each distinct row judged once, the verdicts spread to every row
        refused, days = self._verdicts(keyed)
        spread = None if days is None else np.asarray(days, dtype=object)[row_of].tolist()
        return DayCheck(fields, np.flatnonzero(np.isin(row_of, refused)).tolist(), spread)

    def _verdicts(self, keyed: dict[str, list]) -> tuple[list[int], list[str | None] | None]:
        """``undated``'s refused rows and event days of rows keyed by ``_keys``."""
        rows: set[int] = set()
        days = None
        if self._days is not None:
            days = self._days(keyed)
            values = [keyed[c] for c in self._day_columns]
            rows = {
                n
                for n, (day, *inputs) in enumerate(zip(days, *values, strict=True))
                if day is None and all(v is not None for v in inputs)
            }
        if self._disagree is not None:
            rows.update(n for n, disagrees in enumerate(self._disagree(keyed)) if disagrees)
        return sorted(rows), days

    def _disagreeing(self, frame: pl.DataFrame) -> list[bool]:
        _, rows = inconsistent_rows(frame, self.spec.schema_)
        flags = [False] * frame.height
        for n in rows:
            flags[n] = True
        return flags

    def _row_days(self, raw: pl.DataFrame) -> list[str | None]:
        source = self.spec.source
        return row_days(raw, source.partition_expr, source.day, self.spec.schema_)["day"].to_list()

    def features(
        self, raw: pl.DataFrame, days: list[str | None] | None = None
    ) -> tuple[pl.DataFrame, list[str | None]]:
        """Feature rows for request rows (already validated against the serving schema), and each
        row's event day: ``days`` when the caller has them (``undated`` computed them from these
        very rows), else computed here."""
        if days is None:
            days = self.event_days(raw)
        wanted = sorted({d for d in days if d is not None})
        return compute_features(self.spec, raw, self.references(raw, wanted)), days
