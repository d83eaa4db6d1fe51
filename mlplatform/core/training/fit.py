"""Training a LightGBM model on a time-split window; plain Python, no Dagster or MLflow.

As of day D the window is the ``window_days`` days before D: the oldest ``train_days`` train the
model, the next ``validation_days`` drive early stopping and the decision threshold, and the last
``test_days`` are held out for the evaluation. Splitting by time, never at random, is what makes
the test metrics an honest forecast of the next days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl

from mlplatform.core.data.warehouse import day_range
from mlplatform.core.evaluation.metrics import best_f1_threshold
from mlplatform.core.spec import ModelSpec
from mlplatform.core.task import Task
from mlplatform.core.training.model import Encoding, TabularModel

BINARY = Task("binary")
BASE_PARAMS = {
    "verbosity": -1,
    # One thread: on 2 cores shared with Dagster and other runs, OpenMP's spinning threads made a
    # 0.5 s training take 4 s; a spec can raise it in model.params on a dedicated machine.
    "num_threads": 1,
    "deterministic": True,
    "seed": 7,
}


@dataclass(frozen=True)
class TimeSplit:
    train: list[str]
    validation: list[str]
    test: list[str]

    @classmethod
    def as_of(cls, as_of: dt.date, spec: ModelSpec) -> TimeSplit:
        days = day_range(as_of, spec.window_days)
        first_val = spec.train_days
        first_test = spec.train_days + spec.validation_days
        return cls(days[:first_val], days[first_val:first_test], days[first_test:])

    @property
    def all_days(self) -> list[str]:
        return [*self.train, *self.validation, *self.test]


class TrainingError(ValueError):
    pass


def training_params(task: Task, spec: ModelSpec) -> dict:
    """LightGBM's parameters: the platform's base, the task's objective, then the spec's own."""
    return {**BASE_PARAMS, **task.objective, **spec.params}


@dataclass
class TrainingResult:
    model: TabularModel
    threshold: float
    best_iteration: int
    validation_loss: list[float]
    validation_metrics: dict[str, float]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """Validation loss improved on the first iteration and nothing is NaN."""
        losses = np.asarray(self.validation_loss)
        return bool(len(losses) and np.isfinite(losses).all() and losses.min() < losses[0])

    def importance(self) -> pl.DataFrame:
        booster = self.model.booster
        return pl.DataFrame(
            {
                "feature": booster.feature_name(),
                "gain": booster.feature_importance("gain").astype(float),
                "splits": booster.feature_importance("split").astype(int),
            }
        ).sort("gain", descending=True)


def train_model(
    train: pl.DataFrame,
    validation: pl.DataFrame,
    label: str,
    categorical: list[str],
    numeric: list[str],
    spec: ModelSpec,
    task: Task = BINARY,
) -> TrainingResult:
    """Fit with early stopping on ``validation``; for a binary task, choose the F1-optimal threshold
    there (other tasks have none: NaN)."""
    if train.height < spec.min_rows:
        raise TrainingError(f"only {train.height} training rows; the spec asks for {spec.min_rows}")
    if validation.height == 0:
        raise TrainingError("no validation rows in the window")
    if train[label].n_unique() < 2:
        one = "value" if task.kind == "regression" else "class"
        raise TrainingError(f"label {label!r} has a single {one} in the training days")
    encoding = Encoding.fit(train, categorical, numeric)
    train_set = lgb.Dataset(
        encoding.matrix(train),
        label=train[label].to_numpy(),
        feature_name=encoding.features,
        categorical_feature=categorical,
        free_raw_data=True,
    )
    valid_set = lgb.Dataset(
        encoding.matrix(validation), label=validation[label].to_numpy(), reference=train_set
    )
    history: dict[str, dict[str, list[float]]] = {}
    fitted = lgb.train(
        training_params(task, spec),
        train_set,
        num_boost_round=spec.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(spec.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(history),
        ],
    )
    model = TabularModel(fitted, encoding)
    scores = model.predict(validation)
    y_val = validation[label].to_numpy()
    threshold = best_f1_threshold(y_val, scores) if task.has_threshold else float("nan")
    return TrainingResult(
        model=model,
        threshold=threshold,
        best_iteration=fitted.best_iteration or spec.num_boost_round,
        validation_loss=history["validation"][task.validation_curve],
        validation_metrics=task.metrics(y_val, scores, threshold),
        rows={"train": train.height, "validation": validation.height},
    )
