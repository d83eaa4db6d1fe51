"""Classification metrics against values computed by hand, and the F1 threshold choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlplatform.core.evaluation.metrics import best_f1_threshold, classification_metrics, rank_auc


def test_metrics_match_hand_computed_values() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_score = np.array([0.1, 0.4, 0.35, 0.8])

    metrics = classification_metrics(y_true, y_score, threshold=0.5)

    # Predicted [0, 0, 0, 1]: TP=1, FP=0, FN=1.
    assert metrics["precision"] == 1.0
    assert metrics["recall"] == 0.5
    assert metrics["f1"] == pytest.approx(2 / 3)
    # Of the 4 (positive, negative) pairs only (0.35, 0.4) is ranked wrongly.
    assert metrics["auc"] == pytest.approx(0.75)
    expected_log_loss = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert metrics["log_loss"] == pytest.approx(expected_log_loss)
    assert metrics["base_rate"] == 0.5
    assert metrics["positive_rate"] == 0.25
    assert metrics["threshold"] == 0.5
    assert metrics["rows"] == 4.0


def test_threshold_is_inclusive_and_changes_the_counts() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_score = np.array([0.1, 0.4, 0.35, 0.8])

    metrics = classification_metrics(y_true, y_score, threshold=0.35)

    # Predicted [0, 1, 1, 1] (0.35 >= 0.35): TP=2, FP=1, FN=0.
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == 1.0
    assert metrics["f1"] == pytest.approx(0.8)
    assert metrics["positive_rate"] == 0.75
    assert metrics["auc"] == pytest.approx(0.75)  # AUC does not depend on the threshold


def test_single_class_has_no_auc_but_other_metrics() -> None:
    metrics = classification_metrics(np.array([0, 0, 0]), np.array([0.2, 0.7, 0.1]), threshold=0.5)

    assert math.isnan(metrics["auc"])
    assert metrics["base_rate"] == 0.0
    assert metrics["positive_rate"] == pytest.approx(1 / 3)
    assert metrics["precision"] == 0.0  # zero_division=0, no exception
    assert metrics["log_loss"] == pytest.approx(-(math.log(0.8) + math.log(0.3) + math.log(0.9)) / 3)


def test_extreme_scores_give_a_finite_log_loss() -> None:
    metrics = classification_metrics(np.array([0, 1]), np.array([1.0, 0.0]), threshold=0.5)

    assert math.isfinite(metrics["log_loss"])
    assert metrics["auc"] == 0.0


def test_best_f1_threshold_separates_separable_data() -> None:
    rng = np.random.default_rng(0)
    negatives = rng.uniform(0.0, 0.4, 300)
    positives = rng.uniform(0.6, 1.0, 200)
    y_score = np.concatenate([negatives, positives])
    y_true = np.concatenate([np.zeros(300, dtype=int), np.ones(200, dtype=int)])
    order = rng.permutation(len(y_true))

    threshold = best_f1_threshold(y_true[order], y_score[order])

    assert negatives.max() < threshold <= positives.min()
    assert classification_metrics(y_true, y_score, threshold)["f1"] == 1.0


def test_best_f1_threshold_beats_the_default_on_a_shifted_score() -> None:
    # Every score is below 0.5 but the ranking is perfect: the chosen threshold finds it.
    y_true = np.array([0] * 50 + [1] * 50)
    y_score = np.concatenate([np.linspace(0.01, 0.1, 50), np.linspace(0.2, 0.3, 50)])

    threshold = best_f1_threshold(y_true, y_score)

    assert classification_metrics(y_true, y_score, 0.5)["f1"] == 0.0
    assert classification_metrics(y_true, y_score, threshold)["f1"] == 1.0


@pytest.mark.parametrize(
    ("rows", "distinct_scores", "positive_share"),
    [(2, 2, 0.5), (7, 3, 0.3), (50, 5, 0.5), (400, 400, 0.1), (1000, 20, 0.9)],
)
def test_rank_auc_is_scikit_learns_auc_with_and_without_ties(rows, distinct_scores, positive_share) -> None:
    rng = np.random.default_rng(rows)
    y = (rng.random(rows) < positive_share).astype(int)
    y[0], y[1] = 0, 1  # both classes
    scores = rng.integers(0, distinct_scores, rows) / distinct_scores  # ties when distinct < rows
    assert rank_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_rank_auc_of_one_class_is_nan_and_of_a_perfect_ranking_is_one() -> None:
    assert math.isnan(rank_auc(np.array([1, 1]), np.array([0.2, 0.9])))
    assert rank_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert rank_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
