"""Training and every model gate for a multiclass and a regression task, on small data the test
builds (three classes, or a value, driven by one categorical and two numeric features): the task's
objective and prediction shape, its metrics, floors and the champion comparison in each metric's
direction, and slice gaps on the task's own slice metrics."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from mlplatform.core.evaluation.gates import champion_gate, evaluate_all, metric_floor_gate, slice_gate
from mlplatform.core.spec import GateSpec, ModelSpec
from mlplatform.core.task import Task
from mlplatform.core.training.fit import TrainingError, TrainingResult, train_model
from mlplatform_tests.core.evaluation.test_model_gates import GATE_NAMES
from mlplatform_tests.core.synthetic import CATEGORICAL, NUMERIC, synthetic_target

MULTICLASS, REGRESSION = Task("multiclass", ("low", "mid", "high")), Task("regression")
SPEC = ModelSpec(params={"num_leaves": 15, "min_data_in_leaf": 20}, num_boost_round=200, min_rows=500)
TASKS = {"multiclass": MULTICLASS, "regression": REGRESSION}


@pytest.fixture(scope="module", params=["multiclass", "regression"])
def trained(request: pytest.FixtureRequest) -> tuple[Task, TrainingResult, pl.DataFrame]:
    kind = request.param
    train, validation, test = (
        synthetic_target(n, seed, kind) for n, seed in ((3000, 1), (1000, 2), (1000, 3))
    )
    result = train_model(train, validation, "target", CATEGORICAL, NUMERIC, SPEC, TASKS[kind])
    return TASKS[kind], result, test


def test_the_model_learns_the_task_and_predicts_its_shape(
    trained: tuple[Task, TrainingResult, pl.DataFrame],
) -> None:
    task, result, test = trained
    predictions = result.model.predict(test)

    assert result.converged
    assert math.isnan(result.threshold)  # only a binary model has a decision threshold
    if task.kind == "multiclass":
        assert predictions.shape == (test.height, 3)
        assert np.allclose(predictions.sum(axis=1), 1.0)
        metrics = task.metrics(test["target"].to_numpy(), predictions)
        assert metrics["accuracy"] > 0.6 and metrics["macro_f1"] > 0.55
        assert min(metrics["recall_low"], metrics["recall_mid"], metrics["recall_high"]) > 0.4
    else:
        assert predictions.shape == (test.height,)
        metrics = task.metrics(test["target"].to_numpy(), predictions)
        assert metrics["r2"] > 0.6 and metrics["rmse"] < test["target"].std()
    assert result.validation_metrics.keys() == metrics.keys()


def test_every_gate_passes_a_good_model(trained: tuple[Task, TrainingResult, pl.DataFrame]) -> None:
    task, result, test = trained
    floors = {"accuracy": 0.5} if task.kind == "multiclass" else {"r2": 0.5, "rmse": 10.0}
    gaps = {"accuracy": 0.3} if task.kind == "multiclass" else {"mae": 2.0}
    gates = GateSpec(
        metric_floors=floors,
        primary_metric=task.primary,
        slice_columns=["carrier"],
        slice_gaps=gaps,
        min_slice_rows=50,
        latency_p99_ms=10_000.0,
    )

    evaluation = evaluate_all(result.model, test, "target", result.threshold, gates, None, True, 10, task)

    assert {g.name: g.passed for g in evaluation.gates} == dict.fromkeys(GATE_NAMES, True), [
        g.summary for g in evaluation.gates if not g.passed
    ]
    slices = next(g for g in evaluation.gates if g.name == "slice_disparity").evidence
    assert slices is not None and set(task.slice_metrics) <= set(slices.columns)
    assert slices.filter(pl.col("column") == "carrier").height == 4


def test_a_champion_is_compared_on_the_primary_metric_in_its_direction(
    trained: tuple[Task, TrainingResult, pl.DataFrame],
) -> None:
    task, result, test = trained
    y = test["target"].to_numpy()
    new = task.metrics(y, result.model.predict(test))
    worse = {**new, task.primary: new[task.primary] * 1.2}  # log loss and RMSE: 20% higher is worse
    better = {**new, task.primary: new[task.primary] * 0.8}
    gates = GateSpec(primary_metric=task.primary, max_regression=0.0, metric_floors={}, slice_gaps={})

    assert champion_gate(new, worse, "1", gates, task).passed
    losing = champion_gate(new, better, "1", gates, task)
    assert not losing.passed
    assert losing.figures["improvement"] == pytest.approx(-0.2 * new[task.primary])


@pytest.mark.parametrize(
    ("metric", "value", "floor", "passed", "words"),
    [
        ("rmse", 4.0, 5.0, True, ""),
        ("rmse", 6.0, 5.0, False, "rmse 6.0000 above the floor 5.0"),
        ("r2", 0.3, 0.5, False, "r2 0.3000 below the floor 0.5"),
    ],
)
def test_regression_floors_are_ceilings_for_errors(
    metric: str, value: float, floor: float, passed: bool, words: str
) -> None:
    result = metric_floor_gate({metric: value}, {metric: floor}, REGRESSION)

    assert result.passed is passed
    assert result.summary == (words or "every metric meets its floor")


def test_regression_slice_bias_gap_fails_a_model_that_underestimates_one_slice() -> None:
    rng = np.random.default_rng(0)
    group = np.repeat(["north", "south"], 200)
    y = rng.normal(50, 10, 400)
    predicted = y + rng.normal(0, 1, 400) - 8.0 * (group == "south")  # south is predicted 8 too low
    gates = GateSpec(slice_columns=["region"], slice_gaps={"bias": 3.0}, min_slice_rows=50, metric_floors={})

    result = slice_gate(pl.DataFrame({"region": group}), y, predicted, math.nan, gates, REGRESSION)

    assert not result.passed
    assert result.summary.startswith("region bias gap 8.")
    assert "(north vs south) exceeds 3.0" in result.summary


def test_a_constant_regression_label_is_refused() -> None:
    train = synthetic_target(600, 1, "regression").with_columns(target=pl.lit(3.0))

    with pytest.raises(TrainingError, match="label 'target' has a single value"):
        train_model(
            train, synthetic_target(200, 2, "regression"), "target", CATEGORICAL, NUMERIC, SPEC, REGRESSION
        )
