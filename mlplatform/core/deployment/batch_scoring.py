"""Batch scoring: the champion's answers for stored feature rows, the same answers the service gives.

The service answers a record with keys named from the pipeline's label (per task: the decision at
the version's registered threshold and the probability, the most probable class, or the value) and
the version that answered. The batch path gives the same for every stored ``features`` row of a day, keyed by the pipeline's entity columns, so a batch
consumer and an online caller never see two different answers for one record. The features are
the rows the ``features`` asset stored, computed by the same feature function the service calls
online; the encoding is the one the version's training run logged (``TabularModel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from mlplatform.core.task import Task
from mlplatform.core.training.model import TabularModel

MODEL_VERSION = "model_version"


@dataclass(frozen=True)
class ScoringModel:
    """A registered version as the service holds it: the model, its version and its threshold."""

    version: str
    model: TabularModel
    threshold: float


def answer_columns(task: Task, label: str, predictions: np.ndarray, threshold: float) -> list[pl.Series]:
    """The service's answer keys as columns (``serving/answers.py``): binary ``<label>`` (decision at
    the threshold) and ``<label>_probability``; multiclass ``<label>`` (the most probable class) and
    ``<label>_probability`` (its probability); regression ``<label>`` (the value)."""
    if task.kind == "binary":
        probability = pl.Series(f"{label}_probability", predictions, pl.Float64)
        return [(probability >= threshold).alias(label), probability]
    if task.kind == "multiclass":
        best = predictions.argmax(axis=1) if len(predictions) else np.empty(0, dtype=int)
        names = pl.Series(label, [task.classes[k] for k in best.tolist()], pl.String)
        top = predictions.max(axis=1) if len(predictions) else np.empty(0)
        return [names, pl.Series(f"{label}_probability", top, pl.Float64)]
    return [pl.Series(label, predictions, pl.Float64)]


def score_rows(
    scorer: ScoringModel, features: pl.DataFrame, entity: Mapping[str, pl.DataType], task: Task, label: str
) -> pl.DataFrame:
    """The entity columns of ``features`` (cast to ``entity``'s types: the raw data's, which a feature
    function may have changed) with each row's answer, as the service gives it, and model version.

    Raises ``ValueError`` naming the columns when the rows lack an entity column or a feature the
    version was trained on (a batch must not silently score a null where the service had a value).
    """
    encoding = scorer.model.encoding
    missing = [c for c in [*entity, *encoding.categorical, *encoding.numeric] if c not in features.columns]
    if missing:
        raise ValueError(
            f"cannot score: the feature rows have no column(s) {', '.join(sorted(set(missing)))}"
        )
    width = (0, len(task.classes)) if task.kind == "multiclass" else (0,)
    predictions = (
        np.asarray(scorer.model.booster.predict(encoding.matrix(features)), dtype=float)
        if features.height
        else np.empty(width)
    )
    return features.select(pl.col(name).cast(dtype) for name, dtype in entity.items()).with_columns(
        *answer_columns(task, label, predictions, scorer.threshold),
        pl.lit(scorer.version, pl.String).alias(MODEL_VERSION),
    )
