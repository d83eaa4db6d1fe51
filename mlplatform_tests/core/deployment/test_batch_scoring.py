"""Batch scoring of stored feature rows: the service's score, decision and version for every row."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from mlplatform.core.deployment.batch_scoring import ScoringModel, score_rows
from mlplatform.core.training.model import Encoding, TabularModel
from mlplatform_tests.core.synthetic import CATEGORICAL, NUMERIC, synthetic

ENTITY = {"id": pl.Int32}  # stored as Int64 by the features: cast back to the raw type


@pytest.fixture(scope="module")
def model() -> TabularModel:
    train = synthetic(2000, seed=1)
    encoding = Encoding.fit(train, CATEGORICAL, NUMERIC)
    data = lgb.Dataset(encoding.matrix(train), train["delayed"].to_numpy(), categorical_feature=[0])
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1}, data, num_boost_round=20)
    return TabularModel(booster, encoding)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 1.01])
@pytest.mark.parametrize("rows", [1, 40, 500])  # one row, a few above FEW_ROWS, many
def test_every_row_gets_the_models_score_its_decision_and_the_version(
    model: TabularModel, threshold: float, rows: int
) -> None:
    features = synthetic(rows, seed=2, missing_share=0.1).with_columns(
        pl.when(pl.col("id") % 7 == 0).then(pl.lit("unseen")).otherwise(pl.col("carrier")).alias("carrier")
    )
    scored = score_rows(ScoringModel("3", model, threshold), features, ENTITY)

    expected = model.predict(features)  # the service's call for these rows
    assert scored.schema == {
        "id": pl.Int32,
        "prediction": pl.Float64,
        "decision": pl.Boolean,
        "model_version": pl.String,
    }
    assert scored["id"].to_list() == features["id"].to_list()
    np.testing.assert_allclose(scored["prediction"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert scored["decision"].to_list() == [bool(s >= threshold) for s in expected]
    assert set(scored["model_version"]) == {"3"}


def test_no_rows_give_an_empty_typed_frame(model: TabularModel) -> None:
    scored = score_rows(ScoringModel("1", model, 0.5), synthetic(5, seed=3).head(0), ENTITY)
    assert scored.height == 0
    assert scored.schema == {
        "id": pl.Int32,
        "prediction": pl.Float64,
        "decision": pl.Boolean,
        "model_version": pl.String,
    }


@pytest.mark.parametrize("dropped", ["id", "carrier", "load"])
def test_a_missing_entity_or_feature_column_is_named(model: TabularModel, dropped: str) -> None:
    with pytest.raises(ValueError, match=f"no column\\(s\\) {dropped}"):
        score_rows(ScoringModel("1", model, 0.5), synthetic(10, seed=4).drop(dropped), ENTITY)
