"""The spec's ``task``: each task's defaults, what each refuses, and the label each gives on a real
day of flights (2013-01-01): 0/1, a class index, or a value."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest

from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.features.compute import FeatureError, attach_label, compute_features
from mlplatform.core.features.gates import feature_contract
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import TableSchema
from mlplatform_tests.core.test_spec import FLIGHT_SPEC

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

LATENESS = "CASE WHEN arr_delay > 60 THEN 'long' WHEN arr_delay > 15 THEN 'short' WHEN arr_delay <= 15 THEN 'on_time' END"


def spec_of(task: str, **gates: Any) -> dict[str, Any]:
    data = copy.deepcopy(FLIGHT_SPEC)
    data["task"] = task
    data["gates"] = {
        k: v for k, v in data["gates"].items() if k not in ("metric_floors", "primary_metric", "slice_gaps")
    }
    data["gates"] |= gates
    data["monitoring"].pop("performance_floor")
    if task == "regression":
        data["label"] = {"name": "arr_delay_minutes", "expr": "arr_delay", "when_null": "drop"}
    if task == "multiclass":
        data["label"] = {
            "name": "lateness",
            "expr": LATENESS,
            "when_null": "drop",
            "classes": ["on_time", "short", "long"],
        }
    return data


@pytest.mark.parametrize(
    ("task", "gates", "floors", "primary", "gaps", "live_floor"),
    [
        ("binary", {}, {"auc": 0.6}, "auc", {"auc": 0.2, "tpr": 0.5}, 0.6),
        ("multiclass", {}, {}, "log_loss", {"accuracy": 0.15}, None),
        ("regression", {"slice_gaps": {"mae": 5.0}}, {"r2": 0.0}, "rmse", {"mae": 5.0}, 0.0),
    ],
)
def test_each_task_has_its_defaults(
    task: str, gates: dict, floors: dict, primary: str, gaps: dict, live_floor: float | None
) -> None:
    data = spec_of(task, **gates)
    if task == "binary":
        data["gates"]["slice_gaps"] = {"auc": 0.2, "tpr": 0.5}

    spec = PipelineSpec.model_validate(data)

    assert (spec.gates.metric_floors, spec.gates.primary_metric, spec.gates.slice_gaps) == (
        floors,
        primary,
        gaps,
    )
    assert spec.monitoring.performance_floor == live_floor
    assert spec.task_def.kind == task


def test_a_regression_with_slices_must_say_its_gap_in_label_units() -> None:
    with pytest.raises(ValueError, match=r"gates\.slice_gaps: slice_columns are set but no gap is limited"):
        PipelineSpec.model_validate(spec_of("regression"))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["label"].pop("classes"), "label.classes: a multiclass task names its classes"),
        (lambda d: d["label"].update(classes=["on_time"]), "at least two classes"),
        (lambda d: d["label"].update(classes=["on time", "late"]), "must be letters"),
        (
            lambda d: d["label"].update(when_null="positive"),
            "label.when_null: a multiclass label's null can only be dropped",
        ),
        (lambda d: d["gates"].update(metric_floors={"auc": 0.7}), "'auc' is not a multiclass metric"),
        (lambda d: d["gates"].update(metric_floors={"recall_long": 0.3}), None),
    ],
)
def test_a_multiclass_spec_is_checked(change: Any, words: str | None) -> None:
    data = spec_of("multiclass")
    change(data)

    if words is None:
        assert PipelineSpec.model_validate(data).gates.metric_floors == {"recall_long": 0.3}
    else:
        with pytest.raises(ValueError, match=words):
            PipelineSpec.model_validate(data)


@pytest.fixture(scope="module")
def day(replayed: Replayed) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    spec = PipelineSpec.model_validate(copy.deepcopy(FLIGHT_SPEC))

    def read(path: str, schema: TableSchema) -> pl.DataFrame:
        return read_landing_file(replayed.landing / path.format(day="2013-01-01"), schema, ["NA"])

    return read(spec.source.path, spec.schema_), {
        n: read(r.path, r.schema_) for n, r in spec.references.items()
    }


def test_each_task_labels_real_flights(day: tuple[pl.DataFrame, dict[str, pl.DataFrame]]) -> None:
    raw, references = day
    flown = raw.filter(pl.col("arr_delay").is_not_null())
    multiclass = PipelineSpec.model_validate(spec_of("multiclass"))
    regression = PipelineSpec.model_validate(spec_of("regression", slice_gaps={"mae": 5.0}))

    classes = attach_label(multiclass, raw, compute_features(multiclass, raw, references))
    values = attach_label(regression, raw, compute_features(regression, raw, references))

    # Cancelled flights have no arr_delay: dropped for both.
    assert classes.height == values.height == flown.height
    expected = flown.select(pl.sql_expr(LATENESS).replace_strict(["on_time", "short", "long"], [0, 1, 2]))
    key = multiclass.entity
    joined = classes.join(
        flown.select(*key, pl.sql_expr(LATENESS).alias("name")).cast({c: classes.schema[c] for c in key}),
        on=key,
    )
    assert joined.schema["lateness"] == pl.Int64
    assert sorted(joined["lateness"].unique().to_list()) == [0, 1, 2]
    assert (
        joined["lateness"] == joined["name"].replace_strict(["on_time", "short", "long"], [0, 1, 2])
    ).all()
    assert expected.height == flown.height
    assert values.schema["arr_delay_minutes"] == pl.Float64
    assert sorted(values["arr_delay_minutes"].to_list()) == sorted(
        flown["arr_delay"].cast(pl.Float64).to_list()
    )
    contract = {
        t: feature_contract(s).columns[s.label.name] for t, s in (("m", multiclass), ("r", regression))
    }
    assert (contract["m"].type, contract["m"].min, contract["m"].max) == ("int", 0, 2)
    assert contract["r"].type == "float"


def test_a_label_value_that_is_no_class_is_named(day: tuple[pl.DataFrame, dict[str, pl.DataFrame]]) -> None:
    raw, references = day
    data = spec_of("multiclass")
    data["label"]["classes"] = ["on_time", "short"]
    spec = PipelineSpec.model_validate(data)

    with pytest.raises(FeatureError, match=r"gave \['long'\], not one of the classes \['on_time', 'short'\]"):
        attach_label(spec, raw, compute_features(spec, raw, references))
