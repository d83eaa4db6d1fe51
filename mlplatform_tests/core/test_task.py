"""What each task decides: metric directions, metrics on known predictions, the live metric, the
spread the rollout controller compares, and the leakage targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlplatform.core.task import Task

BINARY, MULTICLASS, REGRESSION = (
    Task("binary"),
    Task("multiclass", ("low", "mid", "high")),
    Task("regression"),
)


@pytest.mark.parametrize(
    ("task", "metric", "higher"),
    [
        (BINARY, "auc", True),
        (BINARY, "log_loss", False),
        (MULTICLASS, "macro_f1", True),
        (MULTICLASS, "log_loss", False),
        (MULTICLASS, "recall_high", True),
        (REGRESSION, "rmse", False),
        (REGRESSION, "mae", False),
        (REGRESSION, "r2", True),
    ],
)
def test_each_metric_is_judged_in_its_own_direction(task: Task, metric: str, higher: bool) -> None:
    assert task.higher_is_better(metric) is higher
    assert task.meets(metric, 0.5, 0.4) is higher
    assert task.meets(metric, 0.3, 0.4) is not higher
    assert task.meets(metric, math.nan, 0.4) is False
    assert task.better_by(metric, 0.5, 0.4) == pytest.approx(0.1 if higher else -0.1)


@pytest.mark.parametrize(
    ("task", "metric"), [(BINARY, "rmse"), (REGRESSION, "auc"), (MULTICLASS, "recall_other")]
)
def test_a_metric_of_another_task_is_refused_by_name(task: Task, metric: str) -> None:
    with pytest.raises(ValueError, match=f"'{metric}' is not a {task.kind} metric"):
        task.higher_is_better(metric)


@pytest.mark.parametrize(
    ("kind", "classes", "problem"),
    [
        ("multiclass", (), "names its classes"),
        ("binary", ("a", "b"), "names its classes"),
        ("multiclass", ("a",), "at least 2"),
    ],
)
def test_classes_belong_to_a_multiclass_task_only(kind: str, classes: tuple[str, ...], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Task(kind, classes)  # type: ignore[arg-type]


def test_objective_per_task() -> None:
    assert BINARY.objective == {"objective": "binary", "metric": "binary_logloss"}
    assert MULTICLASS.objective == {"objective": "multiclass", "metric": "multi_logloss", "num_class": 3}
    assert REGRESSION.objective == {"objective": "regression", "metric": "l2"}
    assert [t.has_threshold for t in (BINARY, MULTICLASS, REGRESSION)] == [True, False, False]


def test_multiclass_metrics_on_known_predictions() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    # Rows 0-3 right, row 4 says "mid" for a "high", row 5 right.
    probabilities = np.array(
        [[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.1, 0.1, 0.8]]
    )

    metrics = MULTICLASS.metrics(y, probabilities)

    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert (metrics["recall_low"], metrics["recall_mid"], metrics["recall_high"]) == (1.0, 1.0, 0.5)
    # F1 per class: low 1, mid 2*(2/3*1)/(2/3+1) = 0.8, high 2*(1*0.5)/1.5 = 2/3.
    assert metrics["macro_f1"] == pytest.approx((1 + 0.8 + 2 / 3) / 3)
    expected_loss = -np.mean(np.log([0.8, 0.6, 0.8, 0.7, 0.4, 0.8]))
    assert metrics["log_loss"] == pytest.approx(expected_loss)
    assert MULTICLASS.logged(probabilities).tolist() == [0, 0, 1, 1, 1, 2]


def test_a_class_absent_from_the_rows_has_no_recall() -> None:
    metrics = MULTICLASS.metrics(np.array([0, 1]), np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]))

    assert math.isnan(metrics["recall_high"])
    assert metrics["recall_low"] == 1.0


def test_regression_metrics_on_known_predictions() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.0, 2.0, 3.0, 6.0])

    metrics = REGRESSION.metrics(y, predicted)

    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["rmse"] == pytest.approx(1.0)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5)
    assert REGRESSION.slice_values(y, predicted, math.nan) == {"mae": 0.5, "bias": 0.5}


@pytest.mark.parametrize(
    ("task", "y", "logged", "expected"),
    [
        (BINARY, [0, 1, 0, 1], [0.1, 0.9, 0.4, 0.3], 0.75),
        (BINARY, [1, 1], [0.1, 0.9], math.nan),
        (MULTICLASS, [0, 1, 2, 2], [0, 1, 1, 2], 0.75),
        (REGRESSION, [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0),
        (REGRESSION, [2.0, 2.0], [1.0, 3.0], math.nan),
    ],
)
def test_live_metric_per_task(task: Task, y: list, logged: list, expected: float) -> None:
    value = task.live(np.array(y), np.array(logged, dtype=float))

    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


def test_the_live_log_loss_of_a_multiclass_model_comes_from_its_logged_class_probabilities() -> None:
    predictions = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]])
    y = np.array([0, 1, 2, 2])
    logged = MULTICLASS.class_probabilities(predictions)

    assert logged == predictions.tolist()  # every class's probability, the classes' own order
    expected = -np.mean(np.log([0.7, 0.8, 0.6, 0.25]))
    assert MULTICLASS.live_log_loss(y, logged) == pytest.approx(expected)
    assert math.isnan(MULTICLASS.live_log_loss(y, [*logged[:3], None]))  # a row logged without them
    assert BINARY.class_probabilities(np.array([0.2, 0.9])) is None
    assert REGRESSION.class_probabilities(np.array([3.5])) is None


@pytest.mark.parametrize(
    ("task", "collapsed", "healthy"),
    [
        (BINARY, [0.3] * 90, list(np.linspace(0.05, 0.95, 90))),
        (REGRESSION, [12.0] * 90, list(np.linspace(0, 30, 90))),
        # One class answered every time has no entropy; three classes in equal shares have ln 3.
        (MULTICLASS, [1.0] * 90, [0.0, 1.0, 2.0] * 30),
    ],
)
def test_spread_of_a_collapsed_model_is_zero(task: Task, collapsed: list, healthy: list) -> None:
    assert task.spread(np.array(collapsed)) == pytest.approx(0.0, abs=1e-12)
    assert task.spread(np.array(healthy)) > 0


def test_multiclass_spread_does_not_depend_on_the_class_order() -> None:
    # The same answers with the classes numbered otherwise: a standard deviation would differ.
    assert MULTICLASS.spread(np.array([0.0] * 50 + [1.0] * 50)) == MULTICLASS.spread(
        np.array([0.0] * 50 + [2.0] * 50)
    )


def test_correct_answers_per_task() -> None:
    assert BINARY.correct(np.array([1, 0, 1]), np.array([0.7, 0.7, 0.2]), 0.5).tolist() == [
        True,
        False,
        False,
    ]
    assert MULTICLASS.correct(np.array([2, 0]), np.array([2.0, 1.0]), math.nan).tolist() == [True, False]
    assert REGRESSION.correct(np.array([1.0]), np.array([1.0]), math.nan) is None


def test_leakage_targets_per_task() -> None:
    assert [t.tolist() for t in MULTICLASS.leakage_targets(np.array([0, 2, 1]))] == [
        [1, 0, 0],
        [0, 0, 1],
        [0, 1, 0],
    ]
    assert [t.tolist() for t in REGRESSION.leakage_targets(np.array([1.0, 5.0, 3.0]))] == [[0, 1, 0]]
