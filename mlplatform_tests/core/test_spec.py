"""The pipeline spec: the real flight spec loads, and each kind of broken spec is refused with a
message that names the field path and the offending name."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from mlplatform.core.evaluation import metrics
from mlplatform.core.spec import PipelineSpec, load_callable

DEFS_YAML = Path(__file__).resolve().parents[2] / "mlplatform" / "defs" / "flight_delay" / "defs.yaml"


def flight_spec_dict() -> dict[str, Any]:
    with DEFS_YAML.open() as handle:
        return yaml.safe_load(handle)["attributes"]["spec"]


FLIGHT_SPEC = flight_spec_dict()


def test_real_flight_spec_is_valid() -> None:
    spec = PipelineSpec.model_validate(copy.deepcopy(FLIGHT_SPEC))

    assert spec.name == "flight_delay"
    assert spec.source.start_date == dt.date(2013, 1, 1)
    assert spec.source.end_date == dt.date(2014, 1, 1)
    assert spec.post_event_columns == ["dep_time", "dep_delay", "arr_time", "arr_delay", "air_time"]
    assert not set(spec.post_event_columns) & set(spec.serving_columns)
    assert set(spec.post_event_columns) | set(spec.serving_columns) == set(spec.schema_.columns)
    assert spec.features.columns[:4] == ["carrier", "origin", "dest", "route"]
    assert spec.model.window_days == 42 + 7 + 7
    assert spec.references["weather"].partitioned
    assert not spec.references["planes"].partitioned
    # Every table says what identifies a row, and the day is the New York date of time_hour.
    assert spec.references["weather"].schema_.primary_key == ["origin", "time_hour"]
    assert (spec.source.day.column, spec.source.day.timezone) == ("time_hour", "America/New_York")
    assert spec.schema_.columns["time_hour"].consistent_with == {
        "year": "year",
        "month": "month",
        "day": "day",
        "hour": "hour",
    }
    assert spec.source.volume.blocking and spec.source.volume.done_marker == "flights/{day}.csv.done"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets ``a.b.c`` in the spec dict."""
    *parents, leaf = path.split(".")

    def mutate(spec: dict[str, Any]) -> None:
        node = spec
        for key in parents:
            node = node[key]
        node[leaf] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, leaf = path.split(".")

    def mutate(spec: dict[str, Any]) -> None:
        node = spec
        for key in parents:
            node = node[key]
        node.pop(leaf)

    return mutate


def _both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        for change in mutations:
            change(spec)

    return mutate


def _append(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(spec: dict[str, Any]) -> None:
        node = spec
        for key in path.split("."):
            node = node[key]
        node.append(value)

    return mutate


# (mutation of the real spec, fragments the error message must contain: field path and offending name)
BAD_SPECS = {
    "label expr names unknown column": (
        _set("label.expr", "arrival_delay > 15"),
        ["label.expr", "'arrival_delay'"],
    ),
    "label expr does not parse": (_set("label.expr", "arr_delay >"), ["label.expr", "cannot parse"]),
    "label missing": (_drop("label"), ["label", "Field required"]),
    "start date is not a date": (_set("source.start_date", "2013-13-01"), ["source.start_date", "month"]),
    "end date before start date": (
        _set("source.end_date", "2012-06-01"),
        ["source", "end_date 2012-06-01", "start_date 2013-01-01"],
    ),
    "primary key names unknown column": (
        _set("schema.primary_key", ["year", "tail_number"]),
        ["schema", "primary_key", "'tail_number'"],
    ),
    "source path without {day}": (_set("source.path", "flights/all.csv"), ["source.path", "{day}"]),
    "slice column is no column": (
        _set("gates.slice_columns", ["carrier", "tail_number"]),
        ["gates.slice_columns", "'tail_number'", "neither a feature, a raw column"],
    ),
    "slice column of an unknown reference column": (
        _set("gates.slice_columns", ["planes.colour"]),
        ["gates.slice_columns", "'planes.colour'", "no column 'colour'"],
    ),
    "slice gap of another task's metric": (
        _set("gates.slice_gaps", {"mae": 5.0}),
        ["gates.slice_gaps", "'mae'", "binary slice metric"],
    ),
    "floor on another task's metric": (
        _set("gates.metric_floors", {"rmse": 5.0}),
        ["gates.metric_floors", "'rmse'", "not a binary metric"],
    ),
    "binary task with classes": (_set("label.classes", ["late", "early"]), ["label.classes", "multiclass"]),
    "regression label whose null is positive": (_set("task", "regression"), ["label.when_null", "dropped"]),
    "drift feature is not a feature": (
        _set("monitoring.drift_features", ["distance", "arr_delay"]),
        ["monitoring.drift_features", "'arr_delay'"],
    ),
    "unknown extra field": (_set("model.learning_rate", 0.1), ["model.learning_rate", "Extra inputs"]),
    "feature both categorical and numeric": (
        _append("features.numeric", "carrier"),
        ["features", "['carrier']", "both categorical and numeric"],
    ),
    "pipeline name not snake case": (_set("name", "Flight-Delay"), ["name", "'Flight-Delay'"]),
    "entity names unknown column": (
        _set("entity", ["year", "month", "day", "carrier", "flight_no"]),
        ["entity", "'flight_no'"],
    ),
    "timestamp is post_event": (_set("timestamp", "arr_delay"), ["timestamp", "'arr_delay'", "post_event"]),
    "timestamp is not a date or datetime": (
        _set("timestamp", "sched_dep_time"),
        ["timestamp", "'sched_dep_time' is a int column, not a date or datetime"],
    ),
    "partition expr names unknown column": (
        _both(_drop("source.day"), _set("source.partition_expr", "DATE(yr || '-' || month || '-' || day)")),
        ["source.partition_expr", "'yr'"],
    ),
    "partition expr and day both declared": (
        _set("source.partition_expr", "DATE(year || '-' || month || '-' || day)"),
        ["source.partition_expr, day: declare one of them, not both"],
    ),
    "no day rule at all": (_drop("source.day"), ["source", "day: declare the day of a row"]),
    "day column unknown": (
        _set("source.day", {"column": "when", "timezone": "America/New_York"}),
        ["source.day.column", "'when'"],
    ),
    "local day of a datetime without a zone": (
        _set("source.day", {"column": "time_hour"}),
        ["source.day.timezone", "'time_hour' needs a time zone"],
    ),
    "day column not a date": (
        _set("references.weather.day", {"column": "origin"}),
        ["references.weather", "day.column: 'origin' is str"],
    ),
    "unknown time zone": (
        _set("source.day.timezone", "America/Gotham"),
        ["source.day.timezone", "unknown time zone 'America/Gotham'"],
    ),
    "reference table without a primary key": (
        _drop("references.weather.schema.primary_key"),
        ["references.weather.schema", "declare primary_key", "allow_duplicates: true"],
    ),
    "primary key and duplicates allowed": (
        _set("schema.allow_duplicates", True),
        ["schema", "primary_key and allow_duplicates: true contradict"],
    ),
    "extra_columns unknown policy": (
        _set("schema.extra_columns", "drop"),
        ["schema.extra_columns", "'refuse'"],
    ),
    "consistent_with names unknown column": (
        _set("schema.columns.time_hour.consistent_with", {"year": "yr"}),
        ["schema", "columns.time_hour.consistent_with: unknown column 'yr'"],
    ),
    "consistent_with an unknown part": (
        _set("schema.columns.time_hour.consistent_with", {"week": "day"}),
        ["schema.columns.time_hour", "'week' is not one of"],
    ),
    "consistent_with a column of the wrong type": (
        _set("schema.columns.time_hour.consistent_with", {"hour": "carrier"}),
        ["schema", "'carrier' is str, a hour needs int"],
    ),
    "format without offset or zone": (
        _set("schema.columns.time_hour", {"type": "datetime", "format": "%m/%d/%Y %H:%M"}),
        ["schema.columns.time_hour", "format '%m/%d/%Y %H:%M' has no %z: declare the timezone"],
    ),
    "format on an int column": (
        _set("schema.columns.hour.format", "%H"),
        ["schema.columns.hour", "format only applies to date and datetime columns"],
    ),
    "allow_non_finite on an int column": (
        _set("schema.columns.hour.allow_non_finite", True),
        ["schema.columns.hour", "allow_non_finite only applies to float columns"],
    ),
    "column type unknown": (
        _set("references.weather.schema.columns.visib.type", "double"),
        ["references.weather.schema.columns.visib.type", "double"],
    ),
    "column min above max": (
        _set("schema.columns.month.min", 13),
        ["schema.columns.month", "min (13.0) is greater than max (12.0)"],
    ),
    "reference key names unknown column": (
        _set("references.planes.key", ["tail"]),
        ["references.planes", "key", "'tail'"],
    ),
    "volume band excludes 1": (
        _set("source.volume", {"band": [1.2, 1.5]}),
        ["source.volume", "band (1.2, 1.5)"],
    ),
    "done marker without {day}": (
        _set("references.weather.volume", {"done_marker": "weather/done"}),
        ["references.weather.volume", "done_marker must contain {day}"],
    ),
    "static reference with {day} in path": (
        _set("references.planes.path", "static/{day}/planes.csv"),
        ["references.planes", "path", "{day}"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_is_refused_naming_field_and_value(case: str) -> None:
    mutate, fragments = BAD_SPECS[case]
    spec = copy.deepcopy(FLIGHT_SPEC)
    mutate(spec)

    with pytest.raises(pydantic.ValidationError) as raised:
        PipelineSpec.model_validate(spec)

    message = str(raised.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"error message lacks {missing}:\n{message}"


def test_spec_is_immutable() -> None:
    spec = PipelineSpec.model_validate(copy.deepcopy(FLIGHT_SPEC))
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "dotted",
    [
        "mlplatform.core.evaluation.metrics:best_f1_threshold",
        "mlplatform.core.evaluation.metrics.best_f1_threshold",
    ],
)
def test_load_callable_imports_both_spellings(dotted: str) -> None:
    assert load_callable(dotted) is metrics.best_f1_threshold


@pytest.mark.parametrize(
    ("dotted", "message"),
    [
        ("best_f1_threshold", "is not a dotted path"),
        ("mlplatform.core.evaluation.metrics:", "is not a dotted path"),
        (":best_f1_threshold", "is not a dotted path"),
        ("mlplatform.core.evaluation.metrics:no_such_function", "does not name a function"),
        ("mlplatform.core.spec:POLARS_TYPES", "does not name a function"),
    ],
)
def test_load_callable_refuses_what_is_not_a_function(dotted: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        load_callable(dotted)
    assert repr(dotted) in str(raised.value)


def test_load_callable_missing_module_names_it() -> None:
    with pytest.raises(ValueError, match=r"cannot import .mlplatform\.no_such_module"):
        load_callable("mlplatform.no_such_module:function")
