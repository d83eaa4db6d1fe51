"""The tables of a pipeline spec: columns, their data contracts, and each table's day rule.

Plain pydantic, no Dagster, split from ``mlplatform.core.spec`` because a table's declaration is
read on its own by ingestion, the data contracts and the service's request contract. Every
validation error names the field, so a bad ``defs.yaml`` is fixed in one look.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ColumnType = Literal["int", "float", "str", "bool", "date", "datetime"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}

DEFAULT_MAX_LENGTH = 256  # characters of a str field a predict request may send, unless the spec says
# Parts of a timestamp another column may be declared to repeat (``consistent_with``), and the
# column type each must have.
TIME_PARTS: dict[str, str] = {"year": "int", "month": "int", "day": "int", "hour": "int", "minute": "int"}
TIME_PARTS["date"] = "date"


def _check_zone(zone: str | None) -> str | None:
    if zone is not None:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as America/New_York)") from exc
    return zone


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo is never ignored) and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(StrictModel):
    """One column of a raw or reference table: its type and its data contract."""

    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    max_null_share: float | None = Field(default=None, ge=0, le=1)
    post_event: bool = Field(
        default=False,
        description="Known only after the event (e.g. dep_delay): never reaches the features.",
    )
    max_length: int | None = Field(
        default=None,
        gt=0,
        description="Longest str value a predict request may send, in characters "
        f"(default {DEFAULT_MAX_LENGTH}); the service refuses longer ones instead of storing them",
    )
    format: str | None = Field(
        default=None,
        description="The strptime format a date or datetime column is delivered in. Without one, a "
        "datetime must be ISO 8601 with its UTC offset (2013-01-01T10:00:00Z) and a date ISO "
        "(2013-01-01): an ambiguous value such as 02/03/2013 is refused, never guessed",
    )
    timezone: str | None = Field(
        default=None,
        description="A datetime's local zone: the zone of values a format without %z delivers, and "
        "the zone the parts named in consistent_with are read in",
    )
    consistent_with: dict[str, str] = Field(
        default_factory=dict,
        description="Columns that repeat a part of this timestamp in its local zone, part -> column "
        "(e.g. {year: year, hour: hour}); every row must agree",
    )
    allow_non_finite: bool = Field(
        default=False, description="A float column accepts NaN and infinities (refused by default)"
    )

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if (self.min is not None or self.max is not None) and self.type not in ("int", "float"):
            raise ValueError(f"min/max only apply to int and float columns, not {self.type}")
        if self.max_length is not None and self.type != "str":
            raise ValueError(f"max_length only applies to str columns, not {self.type}")
        return self

    @property
    def text_limit(self) -> int | None:
        """The longest value a predict request may send for a str column (None for other types)."""
        if self.type != "str":
            return None
        return self.max_length or DEFAULT_MAX_LENGTH

    @model_validator(mode="after")
    def _time_semantics(self) -> ColumnSpec:
        problems = []
        if self.format is not None and self.type not in ("date", "datetime"):
            problems.append(f"format only applies to date and datetime columns, not {self.type}")
        if (self.timezone or self.consistent_with) and self.type != "datetime":
            problems.append(f"timezone and consistent_with only apply to datetime columns, not {self.type}")
        if self.type == "datetime" and self.format and "%z" not in self.format and not self.timezone:
            problems.append(f"format {self.format!r} has no %z: declare the timezone its values are in")
        if self.consistent_with and not self.timezone:
            problems.append("consistent_with needs the timezone its parts are read in")
        problems += [
            f"consistent_with: {part!r} is not one of {sorted(TIME_PARTS)}"
            for part in self.consistent_with
            if part not in TIME_PARTS
        ]
        if self.allow_non_finite and self.type != "float":
            problems.append(f"allow_non_finite only applies to float columns, not {self.type}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class TableSchema(StrictModel):
    """A table's columns and the rules over its rows: a primary key (or duplicates allowed on
    purpose), and what becomes of a delivered column the schema does not name."""

    columns: dict[str, ColumnSpec]
    primary_key: list[str] = Field(default_factory=list)
    allow_duplicates: bool = Field(
        default=False, description="The table has no key: identical rows are data, not a mistake"
    )
    extra_columns: Literal["refuse", "ignore"] = Field(
        default="refuse",
        description="A delivered column the schema does not name: refuse the file, or store it as "
        "text, unchecked (never dropped silently)",
    )

    @model_validator(mode="after")
    def _primary_key_is_declared(self) -> TableSchema:
        problems = [
            f"primary_key names unknown column {c!r}" for c in self.primary_key if c not in self.columns
        ]
        if not self.primary_key and not self.allow_duplicates:
            problems.append("declare primary_key (the columns that identify a row) or allow_duplicates: true")
        if self.primary_key and self.allow_duplicates:
            problems.append("primary_key and allow_duplicates: true contradict each other")
        for name, column in self.columns.items():
            for part, other in column.consistent_with.items():
                wanted = TIME_PARTS.get(part)
                if other not in self.columns:
                    problems.append(f"columns.{name}.consistent_with: unknown column {other!r}")
                elif wanted and self.columns[other].type != wanted:
                    problems.append(
                        f"columns.{name}.consistent_with: {other!r} is {self.columns[other].type}, "
                        f"a {part} needs {wanted}"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DaySpec(StrictModel):
    """The day a row belongs to is the local date of a timestamp (or a date column itself)."""

    column: str
    timezone: str | None = Field(default=None, description="Required for a datetime column")

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        return _check_zone(value)


class VolumeSpec(StrictModel):
    """How many rows a day of this table may have, and what proves a delivery is whole."""

    band: tuple[float, float] = Field(
        default=(0.5, 1.5),
        description="Rows as a share of the trailing days' median, and of the stored partition a "
        "re-delivery replaces",
    )
    blocking: bool = Field(default=True, description="Outside the band blocks (false: only warns)")
    trailing_days: int = Field(default=7, gt=0)
    min_history: int = Field(default=3, ge=1, description="Fewer trailing days: the band is not judged")
    done_marker: str | None = Field(
        default=None,
        description="Path of the upstream's completeness signal next to the landing file, with {day}: "
        "a file holding the delivery's row count, written after the data. Declared, it must exist "
        "and agree with the rows read",
    )

    @model_validator(mode="after")
    def _band_is_ordered(self) -> VolumeSpec:
        low, high = self.band
        if not 0 <= low <= 1 <= high:
            raise ValueError(f"band {self.band} must satisfy 0 <= low <= 1 <= high")
        if self.done_marker is not None and "{day}" not in self.done_marker:
            raise ValueError("done_marker must contain {day}")
        return self


def day_problems(partition_expr: str | None, day: DaySpec | None, schema: TableSchema) -> list[str]:
    """What is wrong with a table's day rule (either a SQL expression or a local-date column)."""
    if partition_expr is not None and day is not None:
        return ["partition_expr, day: declare one of them, not both"]
    if partition_expr is not None:
        return unknown_in_expr("partition_expr", partition_expr, schema)
    if day is None:
        return []
    column = schema.columns.get(day.column)
    if column is None:
        return [f"day.column: unknown column {day.column!r}"]
    if column.type == "datetime" and day.timezone is None:
        return [f"day.timezone: the local date of datetime {day.column!r} needs a time zone"]
    if column.type not in ("date", "datetime"):
        return [f"day.column: {day.column!r} is {column.type}, not a date or datetime"]
    return []


class SourceSpec(StrictModel):
    """Where the daily landing files are and how to read them."""

    path: str = Field(description="Path under the pipeline's landing zone, with {day} for the date")
    format: Literal["csv", "parquet"] = "csv"
    partition_expr: str | None = Field(
        default=None,
        description="SQL expression giving each row's day, e.g. DATE(year || '-' || month || "
        "'-' || day); a row whose day is not its file's day breaks the contract",
    )
    day: DaySpec | None = Field(
        default=None, description="Or: each row's day is the local date of this column in this zone"
    )
    volume: VolumeSpec = Field(default_factory=VolumeSpec)
    null_values: list[str] = Field(default_factory=lambda: [""])
    start_date: dt.date
    end_date: dt.date | None = Field(default=None, description="Exclusive; open-ended if unset")
    loader: str | None = Field(
        default=None,
        description="Dotted path to a function returning the full history of each table, "
        "used by `mlplatform replay` to act as the upstream system",
    )

    @field_validator("path")
    @classmethod
    def _path_has_day(cls, value: str) -> str:
        if "{day}" not in value:
            raise ValueError("path must contain {day}, the partition date")
        return value

    @model_validator(mode="after")
    def _dates_are_ordered(self) -> SourceSpec:
        if self.end_date is not None and self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} is not after start_date {self.start_date}")
        if self.partition_expr is None and self.day is None:
            raise ValueError("day: declare the day of a row (day {column, timezone} or partition_expr)")
        return self


class ReferenceSpec(StrictModel):
    """A reference table joined into the features (weather per day, planes once)."""

    path: str
    partition_expr: str | None = Field(default=None, description="Set for daily references")
    day: DaySpec | None = Field(default=None, description="Or the local-date rule, as for the source")
    schema_: TableSchema = Field(alias="schema")
    key: list[str] = Field(description="Columns the feature function looks rows up by")
    volume: VolumeSpec = Field(default_factory=VolumeSpec, description="Judged for daily references")

    @property
    def partitioned(self) -> bool:
        return self.partition_expr is not None or self.day is not None

    @model_validator(mode="after")
    def _key_is_declared(self) -> ReferenceSpec:
        problems = [f"key: unknown column {c!r}" for c in self.key if c not in self.schema_.columns]
        problems += day_problems(self.partition_expr, self.day, self.schema_)
        if self.partitioned != ("{day}" in self.path):
            problems.append("path: a daily reference needs {day} in its path, a static one none")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def unknown_in_expr(field: str, expr: str, schema: TableSchema) -> list[str]:
    """Problems with a SQL expression: unparseable, or naming undeclared columns."""
    try:
        names = pl.sql_expr(expr).meta.root_names()
    except Exception as exc:  # polars raises several error types for a bad SQL string
        return [f"{field}: cannot parse {expr!r}: {exc}"]
    return [f"{field}: unknown column {c!r}" for c in names if c not in schema.columns]
