"""The model pipeline spec: everything a pipeline declares in its ``defs.yaml``.

Plain pydantic, no Dagster: the spec is validated once at load time, and every validation error
names the field path (``schema.columns.visib.type``) so a bad ``defs.yaml`` is fixed in one look.
Cross-field rules (the label only uses declared columns, the primary key exists, ...) live here
too, so a spec that loads is a spec the platform can run.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any, Literal

import polars as pl
from pydantic import Field, field_validator, model_validator

from mlplatform.core.table_spec import (
    ReferenceSpec,
    SourceSpec,
    StrictModel,
    TableSchema,
    day_problems,
    unknown_in_expr,
)
from mlplatform.core.task import (
    DEFAULT_FLOORS,
    DEFAULT_LIVE_FLOOR,
    DEFAULT_PRIMARY,
    DEFAULT_SLICE_GAPS,
    Task,
    TaskKind,
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CLASS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a class names a metric (recall_<class>)


class LabelSpec(StrictModel):
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


class FeatureSpec(StrictModel):
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


class ModelSpec(StrictModel):
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


class DataGateSpec(StrictModel):
    """Data gates beyond each table's contract and volume (declared per table): leakage."""

    leakage_auc: float = Field(
        default=0.95, gt=0.5, le=1, description="A single feature this predictive is a leak"
    )


class GateSpec(StrictModel):
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


class RolloutStage(StrictModel):
    traffic: float = Field(gt=0, le=1)
    min_requests: int = Field(default=100, ge=0)
    min_minutes: float = Field(default=0, ge=0)
    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_p99_ms: float = Field(default=50.0, gt=0)


class RolloutSpec(StrictModel):
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


class MonitoringSpec(StrictModel):
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


class PipelineSpec(StrictModel):
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
        problems += unknown_in_expr("label.expr", self.label.expr, self.schema_)
        problems += [
            f"source.{p}" for p in day_problems(self.source.partition_expr, self.source.day, self.schema_)
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
