"""Batch scoring: the champion's answers for stored feature rows, the same answers the service gives.

The service answers a record with the model's score (``prediction``), the decision at the
version's registered threshold and the version that answered. The batch path gives the same three
for every stored ``features`` row of a day, keyed by the pipeline's entity columns, so a batch
consumer and an online caller never see two different answers for one record. The features are
the rows the ``features`` asset stored, computed by the same feature function the service calls
online; the encoding is the one the version's training run logged (``TabularModel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from mlplatform.core.training.model import TabularModel

PREDICTION, DECISION, MODEL_VERSION = "prediction", "decision", "model_version"


@dataclass(frozen=True)
class ScoringModel:
    """A registered version as the service holds it: the model, its version and its threshold."""

    version: str
    model: TabularModel
    threshold: float


def score_rows(
    scorer: ScoringModel, features: pl.DataFrame, entity: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """The entity columns of ``features`` (cast to ``entity``'s types: the raw data's, which a feature
    function may have changed) with each row's score, decision and model version.

    Raises ``ValueError`` naming the columns when the rows lack an entity column or a feature the
    version was trained on (a batch must not silently score a null where the service had a value).
    """
    encoding = scorer.model.encoding
    missing = [c for c in [*entity, *encoding.categorical, *encoding.numeric] if c not in features.columns]
    if missing:
        raise ValueError(
            f"cannot score: the feature rows have no column(s) {', '.join(sorted(set(missing)))}"
        )
    if features.height == 0:
        scores = pl.Series(PREDICTION, [], dtype=pl.Float64)
    else:
        scores = pl.Series(PREDICTION, scorer.model.booster.predict(encoding.matrix(features)), pl.Float64)
    return features.select(pl.col(name).cast(dtype) for name, dtype in entity.items()).with_columns(
        scores,
        (scores >= scorer.threshold).alias(DECISION),
        pl.lit(scorer.version, pl.String).alias(MODEL_VERSION),
    )
