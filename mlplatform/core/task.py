"""What a pipeline's task (binary, multiclass, regression) decides, in one place. Plain Python.

The rest of the platform is task-blind: training asks the task for LightGBM's objective, the
evaluation for its metrics and which way each is better, the gates for what a slice is measured
by, monitoring for the one live metric it watches and the rollout controller for how spread out a
model's predictions are. Every metric the gates and the monitoring compare is named here with
its direction, so a floor on ``rmse`` is a ceiling and a floor on ``auc`` a floor, without the
callers knowing which.

Predictions: a binary model gives the probability of the positive class (1-D), a multiclass model
one probability per class (n x K, classes in the spec's order), a regression model the value
(1-D). The prediction log keeps one number per answer (``logged``): the probability, the index of
the predicted class, or the value; for a multiclass answer also every class's probability
(``class_probabilities``), from which the live log loss is measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

from mlplatform.core.evaluation.metrics import (
    classification_metrics,
    multiclass_metrics,
    rank_auc,
    regression_metrics,
)

TaskKind = Literal["binary", "multiclass", "regression"]
TASKS: tuple[TaskKind, ...] = ("binary", "multiclass", "regression")

# Metric -> higher is better. Only these may have floors or be the primary metric.
_DIRECTIONS: dict[TaskKind, dict[str, bool]] = {
    "binary": {"auc": True, "log_loss": False, "precision": True, "recall": True, "f1": True},
    "multiclass": {"log_loss": False, "macro_f1": True, "accuracy": True},
    "regression": {"rmse": False, "mae": False, "r2": True},
}
DEFAULT_PRIMARY: dict[TaskKind, str] = {"binary": "auc", "multiclass": "log_loss", "regression": "rmse"}
# Reported beside the primary metric and the floors in the promotion reasons.
_REPORTED: dict[TaskKind, list[str]] = {
    "binary": ["log_loss", "f1"],
    "multiclass": ["log_loss", "macro_f1", "accuracy"],
    "regression": ["rmse", "mae", "r2"],
}
# Per slice: the metrics whose gap (best slice minus worst) the slice gate limits, higher is better
# for each except a regression's error and bias, whose gap is judged the same way (max minus min).
_SLICE_METRICS: dict[TaskKind, list[str]] = {
    "binary": ["auc", "tpr"],
    "multiclass": ["accuracy", "macro_f1"],
    "regression": ["mae", "bias"],
}
# A regression's gap is in the label's units, so it has no default: the spec must say.
DEFAULT_SLICE_GAPS: dict[TaskKind, dict[str, float]] = {
    "binary": {"auc": 0.15, "tpr": 0.3},
    "multiclass": {"accuracy": 0.15},
    "regression": {},
}
DEFAULT_FLOORS: dict[TaskKind, dict[str, float]] = {
    "binary": {"auc": 0.6},
    "multiclass": {},
    "regression": {"r2": 0.0},  # no better than predicting the test days' mean is no model
}
# The live metric monitoring and the rollout controller compare; higher is better for each, and
# each is scale-free, so a floor and an allowed drop have a meaning whatever the label's units.
LIVE_METRIC: dict[TaskKind, str] = {"binary": "auc", "multiclass": "accuracy", "regression": "r2"}
DEFAULT_LIVE_FLOOR: dict[TaskKind, float | None] = {"binary": 0.6, "multiclass": None, "regression": 0.0}
_OBJECTIVE: dict[TaskKind, dict[str, str]] = {
    "binary": {"objective": "binary", "metric": "binary_logloss"},
    "multiclass": {"objective": "multiclass", "metric": "multi_logloss"},
    "regression": {"objective": "regression", "metric": "l2"},
}


@dataclass(frozen=True)
class Task:
    """A pipeline's task; ``classes`` names a multiclass label's values in their index order."""

    kind: TaskKind = "binary"
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "multiclass") != bool(self.classes):
            raise ValueError("a multiclass task names its classes; other tasks name none")
        if self.kind == "multiclass" and len(self.classes) < 2:
            raise ValueError(f"a multiclass task needs at least 2 classes, not {list(self.classes)}")

    # -- metrics and their directions --------------------------------------------------------
    @property
    def gateable(self) -> dict[str, bool]:
        """Metric -> higher is better, for every metric a floor or the primary metric may name."""
        directions = dict(_DIRECTIONS[self.kind])
        directions.update((f"recall_{c}", True) for c in self.classes)
        return directions

    def higher_is_better(self, metric: str) -> bool:
        if metric not in self.gateable:
            raise ValueError(f"{metric!r} is not a {self.kind} metric; one of {sorted(self.gateable)}")
        return self.gateable[metric]

    def better_by(self, metric: str, new: float, old: float) -> float:
        """How much better ``new`` is than ``old`` (negative when worse), in the metric's units."""
        return new - old if self.higher_is_better(metric) else old - new

    def meets(self, metric: str, value: float, floor: float) -> bool:
        """The value is on the right side of its floor (a ceiling for an error); NaN never is."""
        if math.isnan(value):
            return False
        return value >= floor if self.higher_is_better(metric) else value <= floor

    @property
    def primary(self) -> str:
        return DEFAULT_PRIMARY[self.kind]

    @property
    def reported(self) -> list[str]:
        return _REPORTED[self.kind]

    @property
    def slice_metrics(self) -> list[str]:
        return _SLICE_METRICS[self.kind]

    @property
    def live_metric(self) -> str:
        return LIVE_METRIC[self.kind]

    # -- training ------------------------------------------------------------------------------
    @property
    def objective(self) -> dict[str, object]:
        """LightGBM's objective and validation metric for this task."""
        params: dict[str, object] = dict(_OBJECTIVE[self.kind])
        if self.kind == "multiclass":
            params["num_class"] = len(self.classes)
        return params

    @property
    def validation_curve(self) -> str:
        """The name LightGBM records the validation loss under."""
        return _OBJECTIVE[self.kind]["metric"]

    @property
    def has_threshold(self) -> bool:
        """Only a binary model turns its score into a decision at a threshold."""
        return self.kind == "binary"

    # -- what predictions become ------------------------------------------------------------
    def logged(self, predictions: np.ndarray) -> np.ndarray:
        """One number per prediction for the log: probability, predicted class index, or value."""
        predictions = np.asarray(predictions, dtype=float)
        if self.kind == "multiclass":
            return predictions.argmax(axis=1).astype(float)
        return predictions

    def class_probabilities(self, predictions: np.ndarray) -> list[list[float]] | None:
        """A multiclass prediction's probability of each class per row (the spec's class order),
        which the log keeps beside the predicted class so that a live log loss can be measured;
        None for the other tasks, whose one logged number is the whole prediction."""
        if self.kind != "multiclass":
            return None
        return np.asarray(predictions, dtype=float).tolist()

    def live_log_loss(self, y: np.ndarray, probabilities: list) -> float:
        """A multiclass model's live log loss from the class probabilities the log kept; NaN for
        another task, no rows, or a row logged without them (before the log kept them)."""
        if self.kind != "multiclass" or len(y) == 0 or any(p is None for p in probabilities):
            return math.nan
        return multiclass_metrics(y, np.asarray(probabilities, dtype=float), self.classes)["log_loss"]

    def metrics(
        self, y: np.ndarray, predictions: np.ndarray, threshold: float = math.nan
    ) -> dict[str, float]:
        """Every metric of this task on labelled rows (plus a few reported figures)."""
        if self.kind == "binary":
            return classification_metrics(y, predictions, threshold)
        if self.kind == "multiclass":
            return multiclass_metrics(y, predictions, self.classes)
        return regression_metrics(y, predictions)

    def slice_values(self, y: np.ndarray, predictions: np.ndarray, threshold: float) -> dict[str, float]:
        """The slice metrics of one slice's rows (NaN where undefined, e.g. AUC of one class)."""
        y = np.asarray(y)
        if self.kind == "binary":
            scores = np.asarray(predictions, dtype=float)
            both = len(np.unique(y)) == 2
            positives = y == 1
            return {
                "auc": rank_auc(y, scores) if both else math.nan,
                "tpr": float((scores[positives] >= threshold).mean()) if positives.any() else math.nan,
            }
        if self.kind == "multiclass":
            predicted = np.asarray(predictions).argmax(axis=1)
            return {
                "accuracy": float(accuracy_score(y, predicted)),
                "macro_f1": float(
                    f1_score(y, predicted, labels=np.unique(y), average="macro", zero_division=0)
                ),
            }
        residual = np.asarray(predictions, dtype=float) - np.asarray(y, dtype=float)
        return {"mae": float(np.abs(residual).mean()), "bias": float(residual.mean())}

    def slice_judged(self, y: np.ndarray, min_rows: int) -> bool:
        """Whether a slice is large enough (and, for AUC, has both classes) to be judged."""
        return len(y) >= min_rows and (self.kind != "binary" or len(np.unique(y)) == 2)

    def live(self, y: np.ndarray, logged: np.ndarray) -> float:
        """The live metric from logged predictions and the labels that arrived; NaN if undefined."""
        y, logged = np.asarray(y), np.asarray(logged, dtype=float)
        if len(y) == 0:
            return math.nan
        if self.kind == "binary":
            return float(roc_auc_score(y, logged)) if len(np.unique(y)) == 2 else math.nan
        if self.kind == "multiclass":
            return float((logged == y).mean())
        return float(r2_score(y, logged)) if np.var(y) > 0 else math.nan

    def correct(self, y: np.ndarray, logged: np.ndarray, threshold: float) -> np.ndarray | None:
        """Which logged predictions were right (the A/B test counts them); None for a regression."""
        if self.kind == "binary":
            return (np.asarray(logged) >= threshold) == (np.asarray(y) == 1)
        if self.kind == "multiclass":
            return np.asarray(logged) == np.asarray(y)
        return None

    def spread(self, logged: np.ndarray) -> float:
        """How spread out a model's predictions are (the rollout controller compares a challenger's
        with the champion's: a model that collapsed to one answer has none). The standard deviation
        of probabilities or values; for classes, the entropy of the predicted classes' shares (a
        standard deviation of class indices would depend on the order the classes are named in)."""
        logged = np.asarray(logged, dtype=float)
        if self.kind != "multiclass":
            return float(logged.std())
        shares = np.bincount(logged.astype(int), minlength=len(self.classes)) / max(len(logged), 1)
        shares = shares[shares > 0]
        return float(-(shares * np.log(shares)).sum())

    def leakage_targets(self, y: np.ndarray) -> list[np.ndarray]:
        """0/1 targets a single feature's univariate AUC is measured against (the leakage gate):
        the label itself, each class against the rest, or a value above the median."""
        y = np.asarray(y)
        if self.kind == "binary":
            return [y.astype(int)]
        if self.kind == "multiclass":
            return [(y == k).astype(int) for k in range(len(self.classes))]
        return [(y > np.median(y)).astype(int)]
