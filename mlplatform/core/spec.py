"""The model pipeline spec: everything a pipeline declares in its ``defs.yaml``.

Plain pydantic, no Dagster: the spec is validated once at load time, and every validation error
names the field path (``schema.columns.visib.type``) so a bad ``defs.yaml`` is fixed in one look.
Cross-field rules (the label only uses declared columns, the primary key exists, ...) live here
too, so a spec that loads is a spec the platform can run.
"""

from __future__ import annotations

import datetime as dt
import importlib
import re
import zoneinfo
from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlplatform.core.task import (
    DEFAULT_FLOORS,
    DEFAULT_LIVE_FLOOR,
    DEFAULT_PRIMARY,
    DEFAULT_SLICE_GAPS,
    Task,
    TaskKind,
)

ColumnType = Literal["int", "float", "str", "bool", "date", "datetime"]

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us", "UTC"),
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DEFAULT_MAX_LENGTH = 256  # characters of a str field a predict request may send, unless the spec says
_CLASS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a class names a metric (recall_<class>)
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
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


class TableSchema(_Strict):
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


class DaySpec(_Strict):
    """The day a row belongs to is the local date of a timestamp (or a date column itself)."""

    column: str
    timezone: str | None = Field(default=None, description="Required for a datetime column")

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        return _check_zone(value)


class VolumeSpec(_Strict):
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


def _day_problems(partition_expr: str | None, day: DaySpec | None, schema: TableSchema) -> list[str]:
    """What is wrong with a table's day rule (either a SQL expression or a local-date column)."""
    if partition_expr is not None and day is not None:
        return ["partition_expr, day: declare one of them, not both"]
    if partition_expr is not None:
        return _unknown_in_expr("partition_expr", partition_expr, schema)
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


class SourceSpec(_Strict):
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


class ReferenceSpec(_Strict):
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
        problems += _day_problems(self.partition_expr, self.day, self.schema_)
        if self.partitioned != ("{day}" in self.path):
            problems.append("path: a daily reference needs {day} in its path, a static one none")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class LabelSpec(_Strict):
    name: str
    expr: str = Field(description="A SQL expression over raw columns, e.g. 'arr_delay > 15'")
    when_null: Literal["positive", "negative", "drop"] = Field(
        description="What a row whose expression is null (e.g. a cancelled flight) becomes; "
        "positive and negative only exist for a binary task"
    )
    classes: list[str] | None = Field(
        default=None,
        description="A multiclass label's values, in the order the model numbers them (0, 1, ...); "
        "the expression gives one of them for every row",
    )

    @field_validator("classes")
    @classmethod
    def _classes_are_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        bad = [c for c in value if not _CLASS.match(c)]
        if bad:
            raise ValueError(f"class(es) {bad} must be letters, digits, '_', '.' or '-'")
        if len(set(value)) != len(value):
            raise ValueError(f"classes {value} name a class twice")
        return value

    def expression(self) -> pl.Expr:
        return pl.sql_expr(self.expr)


class FeatureSpec(_Strict):
    function: str = Field(description="Dotted path 'module:function' to the polars feature code")
    categorical: list[str]
    numeric: list[str]
    lazy: bool = Field(
        default=False,
        description="The function takes and returns LazyFrames too (LazyFrame operations only): the "
        "platform then hands it lazy frames and runs its whole plan as one query, which on the few "
        "rows of an online request costs about a third of running each step eagerly",
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> FeatureSpec:
        both = set(self.categorical) & set(self.numeric)
        if both:
            raise ValueError(f"feature(s) {sorted(both)} are both categorical and numeric")
        return self

    @property
    def columns(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def load(self) -> Callable[..., pl.DataFrame]:
        return load_callable(self.function)


class ModelSpec(_Strict):
    """LightGBM settings and the time-based split of the training window before the as-of day."""

    params: dict[str, Any] = Field(default_factory=dict)
    num_boost_round: int = Field(default=500, gt=0)
    early_stopping_rounds: int = Field(default=30, gt=0)
    train_days: int = Field(default=42, gt=0)
    validation_days: int = Field(default=7, gt=0)
    test_days: int = Field(default=7, gt=0)
    min_rows: int = Field(default=1000, gt=0, description="Fewer training rows is an error")

    @property
    def window_days(self) -> int:
        return self.train_days + self.validation_days + self.test_days


class DataGateSpec(_Strict):
    """Data gates beyond each table's contract and volume (declared per table): leakage."""

    leakage_auc: float = Field(
        default=0.95, gt=0.5, le=1, description="A single feature this predictive is a leak"
    )


class GateSpec(_Strict):
    """Model quality gates, enforced as blocking asset checks on the evaluation.

    Every metric is judged in its own direction (``core/task.py``): a floor on ``auc`` is a
    minimum, a floor on ``rmse`` a maximum. Defaults are the task's (the pipeline fills them in);
    standing alone, a GateSpec has the binary task's."""

    metric_floors: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_FLOORS["binary"]),
        description="Metric -> the worst value allowed, in the metric's direction",
    )
    primary_metric: str = Field(default="auc", description="The metric compared with the champion")
    max_regression: float = Field(default=0.005, ge=0)
    min_improvement: float = Field(default=0.0, ge=0)
    slice_columns: list[str] = Field(
        default_factory=list,
        description="Columns the test rows are sliced by: a feature, any raw column (post_event and "
        "non-feature ones too) or '<reference>.<column>'. A column that is not a feature is joined to "
        "the test rows by entity for the evaluation only: it never reaches the model or the service",
    )
    slice_gaps: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SLICE_GAPS["binary"]),
        description="Slice metric -> the largest allowed gap between the best and the worst judged "
        "slice (binary: auc, tpr; multiclass: accuracy, macro_f1; regression: mae, bias, in the "
        "label's units)",
    )
    min_slice_rows: int = Field(default=200, gt=0)
    latency_p99_ms: float = Field(default=20.0, gt=0)


class RolloutStage(_Strict):
    traffic: float = Field(gt=0, le=1)
    min_requests: int = Field(default=100, ge=0)
    min_minutes: float = Field(default=0, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=50.0, gt=0)


class RolloutSpec(_Strict):
    """How an approved challenger reaches traffic, and the live limits that roll it back.

    The rollout controller compares the challenger with the champion over each stage: its error
    rate and p99 latency against the stage's limits at once, the spread of its scores against the
    champion's on the same traffic (a model that predicts a constant shows up here before any label
    arrives), and, as labels arrive, its live AUC against the champion's.
    """

    strategy: Literal["canary", "blue_green", "shadow", "ab"] = "canary"
    shadow_first: bool = True
    stages: list[RolloutStage] = Field(
        default_factory=lambda: [RolloutStage(traffic=t) for t in (0.05, 0.25, 0.5, 1.0)]
    )
    shadow: RolloutStage = Field(
        default_factory=lambda: RolloutStage(traffic=1.0, min_requests=200, min_minutes=5),
        description="Minimums and limits of the shadow stage (traffic is ignored: shadow answers none)",
    )
    auto_rollback: bool = True
    min_score_spread: float = Field(
        default=0.25,
        ge=0,
        description="The challenger's score standard deviation over the stage, as a share of the "
        "champion's, below which it rolls back: a model that predicts a constant (or nearly) has "
        "collapsed. Only collapse is judged: a retrained model's scores may sit elsewhere than a "
        "stale champion's (another season's base rate) and be right",
    )
    max_live_drop: float = Field(
        default=0.03,
        ge=0,
        description="The challenger's live metric (AUC, accuracy or R², by task) below the champion's by "
        "more than this rolls back",
    )
    min_labelled: int = Field(
        default=300, gt=0, description="Labelled predictions per variant before the live metric is compared"
    )
    min_requests_for_limits: int = Field(
        default=20, gt=0, description="Challenger requests before error rate and p99 are judged"
    )
    max_batch: int = Field(default=1000, gt=0)


class MonitoringSpec(_Strict):
    """What the monitoring assets measure and when the sensors ask for a retraining."""

    drift_features: list[str] = Field(
        default_factory=list,
        description="Features whose drift against the champion's training window asks for a retraining "
        "(all if empty); every feature's drift is measured and shown",
    )
    psi_threshold: float = Field(default=0.2, gt=0)
    drift_min_rows: int = Field(default=200, gt=0, description="Smaller partitions are not judged for drift")
    freshness_hours: float = Field(default=26.0, gt=0)
    model_max_age_days: float = Field(default=14.0, gt=0)
    performance_floor: float | None = Field(
        default=DEFAULT_LIVE_FLOOR["binary"],
        le=1,
        description="A day whose live metric (binary: AUC, multiclass: accuracy, regression: R²) is below "
        "this is bad; none: only the drop below the model's own test figure counts",
    )
    max_live_drop: float = Field(
        default=0.03,
        ge=0,
        description="A day whose live metric is this far below the served model's own test figure counts "
        "as bad, like a day below the floor",
    )
    performance_days: int = Field(default=2, gt=0)
    label_delay_days: int = Field(default=1, ge=0)
    retrain_cooldown_days: int = Field(
        default=7,
        ge=0,
        description="Drift and performance triggers wait this many days after the newest trained model: "
        "a rejected retraining would otherwise be retried every day against the same drift",
    )
    nightly_cron: str = Field(default="0 2 * * *", description="The fallback retraining schedule")
    sensor_interval_seconds: int = Field(default=30, gt=0)


class PipelineSpec(_Strict):
    """One model pipeline, as declared in ``mlplatform/defs/<pipeline>/defs.yaml``."""

    name: str
    description: str = ""
    task: TaskKind = Field(default="binary", description="binary, multiclass or regression")
    source: SourceSpec
    schema_: TableSchema = Field(alias="schema")
    references: dict[str, ReferenceSpec] = Field(default_factory=dict)
    entity: list[str] = Field(description="Columns that identify one prediction")
    timestamp: str = Field(
        description="Event time column (date or datetime), known before the event: when the "
        "records of a day are only dated, the date is the event time"
    )
    label: LabelSpec
    features: FeatureSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    data_gates: DataGateSpec = Field(default_factory=DataGateSpec)
    gates: GateSpec = Field(default_factory=GateSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} must be lower_snake_case (it prefixes asset keys)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """Gates and monitoring a pipeline leaves unset take its task's defaults."""
        if not isinstance(data, dict) or data.get("task", "binary") not in DEFAULT_FLOORS:
            return data
        task = data.get("task", "binary")
        data = dict(data)
        for section, defaults in (
            ("gates", {"metric_floors": DEFAULT_FLOORS[task], "slice_gaps": DEFAULT_SLICE_GAPS[task]}),
            ("monitoring", {"performance_floor": DEFAULT_LIVE_FLOOR[task]}),
        ):
            given = data.get(section, {})
            if isinstance(given, dict):
                data[section] = {**defaults, **given}
        gates = data["gates"]
        if isinstance(gates, dict):
            data["gates"] = {"primary_metric": DEFAULT_PRIMARY[task], **gates}
        return data

    @property
    def task_def(self) -> Task:
        """What the pipeline's task decides: objective, metrics and their directions, answers."""
        return Task(self.task, tuple(self.label.classes or ()))

    @model_validator(mode="after")
    def _task_is_consistent(self) -> PipelineSpec:
        problems = []
        if (self.task == "multiclass") != (self.label.classes is not None):
            problems.append("label.classes: a multiclass task names its classes (two or more), others none")
        elif self.task == "multiclass" and len(self.label.classes or []) < 2:
            problems.append("label.classes: a multiclass task needs at least two classes")
        if self.task != "binary" and self.label.when_null != "drop":
            problems.append(f"label.when_null: a {self.task} label's null can only be dropped")
        if problems:
            raise ValueError("; ".join(problems))
        task = self.task_def
        problems += [
            f"gates.{field}: {name!r} is not a {self.task} metric (one of {sorted(task.gateable)})"
            for field, names in (
                ("metric_floors", list(self.gates.metric_floors)),
                ("primary_metric", [self.gates.primary_metric]),
            )
            for name in names
            if name not in task.gateable
        ]
        problems += [
            f"gates.slice_gaps: {name!r} is not a {self.task} slice metric (one of {task.slice_metrics})"
            for name in self.gates.slice_gaps
            if name not in task.slice_metrics
        ]
        if self.gates.slice_columns and not self.gates.slice_gaps:
            problems.append(
                f"gates.slice_gaps: slice_columns are set but no gap is limited (for a {self.task} task, "
                f"set one of {task.slice_metrics})"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _columns_are_declared(self) -> PipelineSpec:
        columns = self.schema_.columns
        problems = []
        for field, names in (("entity", self.entity), ("timestamp", [self.timestamp])):
            problems += [f"{field}: unknown column {c!r}" for c in names if c not in columns]
        if self.timestamp in columns and columns[self.timestamp].post_event:
            problems.append(f"timestamp: {self.timestamp!r} is marked post_event")
        if self.timestamp in columns and columns[self.timestamp].type not in ("date", "datetime"):
            problems.append(
                f"timestamp: {self.timestamp!r} is a {columns[self.timestamp].type} column, "
                "not a date or datetime"
            )
        problems += _unknown_in_expr("label.expr", self.label.expr, self.schema_)
        problems += [
            f"source.{p}" for p in _day_problems(self.source.partition_expr, self.source.day, self.schema_)
        ]
        problems += [
            f"features: label {self.label.name!r} cannot be a feature"
            for c in self.features.columns
            if c == self.label.name
        ]
        problems += [problem for c in self.gates.slice_columns for problem in self._slice_problems(c)]
        problems += [
            f"monitoring.drift_features: {c!r} is not a feature"
            for c in self.monitoring.drift_features
            if c not in self.features.columns
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _slice_problems(self, column: str) -> list[str]:
        """A slice column is a feature, a raw column, or a reference's column whose table can be
        joined to the raw rows (its key columns are raw columns)."""
        if column in self.features.columns or column in self.schema_.columns:
            return []
        table, _, name = column.partition(".")
        where = f"gates.slice_columns: {column!r}"
        if table not in self.references or not name:
            return [f"{where} is neither a feature, a raw column nor '<reference>.<column>'"]
        reference = self.references[table]
        if name not in reference.schema_.columns:
            return [f"{where}: reference {table!r} has no column {name!r}"]
        missing = [k for k in reference.key if k not in self.schema_.columns]
        return (
            [f"{where}: reference {table!r} is keyed by {missing}, which are not raw columns"]
            if missing
            else []
        )

    @property
    def post_event_columns(self) -> list[str]:
        return [name for name, col in self.schema_.columns.items() if col.post_event]

    @property
    def serving_columns(self) -> list[str]:
        """What a prediction request carries: every raw column known before the event."""
        return [name for name, col in self.schema_.columns.items() if not col.post_event]

    @property
    def static_references(self) -> list[str]:
        """Reference tables delivered whole, once (no day partitions)."""
        return [name for name, ref in self.references.items() if not ref.partitioned]

    @property
    def daily_references(self) -> list[str]:
        """Reference tables delivered day by day, like the source."""
        return [name for name, ref in self.references.items() if ref.partitioned]

    @property
    def daily_tables(self) -> list[str]:
        """Every table ingestion writes a day partition of, in dependency order."""
        return ["raw", *self.daily_references, "features"]


def _unknown_in_expr(field: str, expr: str, schema: TableSchema) -> list[str]:
    """Problems with a SQL expression: unparseable, or naming undeclared columns."""
    try:
        names = pl.sql_expr(expr).meta.root_names()
    except Exception as exc:  # polars raises several error types for a bad SQL string
        return [f"{field}: cannot parse {expr!r}: {exc}"]
    return [f"{field}: unknown column {c!r}" for c in names if c not in schema.columns]


def load_callable(dotted: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (or ``package.module.function``)."""
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{dotted!r} is not a dotted path 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{dotted!r}: cannot import {module_name!r} ({exc})") from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"{dotted!r} does not name a function")
    return function
