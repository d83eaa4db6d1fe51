"""Batch scoring of stored feature rows: the service's answer and the version for every row, per task."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from mlplatform.core.deployment.batch_scoring import ScoringModel, score_rows
from mlplatform.core.task import Task
from mlplatform.core.training.model import Encoding, TabularModel
from mlplatform_tests.core.synthetic import CATEGORICAL, NUMERIC, synthetic

ENTITY = {"id": pl.Int32}  # stored as Int64 by the features: cast back to the raw type
CLASSES = ("low", "mid", "high")


def _model(task: Task) -> TabularModel:
    train = synthetic(2000, seed=1)
    target = {
        "binary": train["delayed"],
        "multiclass": (train["temp"].fill_null(0) > 0).cast(pl.Int64) + train["delayed"],
        "regression": train["load"] * 10,
    }[task.kind]
    encoding = Encoding.fit(train, CATEGORICAL, NUMERIC)
    objective = {"binary": {"objective": "binary"}, "multiclass": {"objective": "multiclass", "num_class": 3},
                 "regression": {"objective": "regression"}}[task.kind]  # fmt: skip
    data = lgb.Dataset(encoding.matrix(train), target.to_numpy(), categorical_feature=[0])
    booster = lgb.train({**objective, "verbose": -1, "num_threads": 1}, data, num_boost_round=10)
    return TabularModel(booster, encoding)


TASKS = {
    "binary": Task("binary"),
    "multiclass": Task("multiclass", CLASSES),
    "regression": Task("regression"),
}


@pytest.fixture(scope="module", params=list(TASKS))
def task_model(request: pytest.FixtureRequest) -> tuple[Task, TabularModel]:
    return TASKS[request.param], _model(TASKS[request.param])


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.01])
@pytest.mark.parametrize("rows", [1, 40, 500])  # one row, a few above FEW_ROWS, many
def test_every_row_gets_the_services_answer_and_the_version(
    task_model: tuple[Task, TabularModel], threshold: float, rows: int
) -> None:
    task, model = task_model
    features = synthetic(rows, seed=2, missing_share=0.1).with_columns(
        pl.when(pl.col("id") % 7 == 0).then(pl.lit("unseen")).otherwise(pl.col("carrier")).alias("carrier")
    )
    scored = score_rows(ScoringModel("3", model, threshold), features, ENTITY, task, "y")

    expected = np.asarray(model.predict(features))  # the service's call for these rows
    assert scored["id"].to_list() == features["id"].to_list()
    assert scored.schema["id"] == pl.Int32 and set(scored["model_version"]) == {"3"}
    if task.kind == "binary":
        assert scored.columns == ["id", "y", "y_probability", "model_version"]
        np.testing.assert_allclose(scored["y_probability"].to_numpy(), expected, rtol=0, atol=1e-12)
        assert scored["y"].to_list() == [bool(s >= threshold) for s in expected]
    elif task.kind == "multiclass":
        assert scored.columns == ["id", "y", "y_probability", "model_version"]
        assert scored["y"].to_list() == [CLASSES[k] for k in expected.argmax(axis=1)]
        np.testing.assert_allclose(scored["y_probability"].to_numpy(), expected.max(axis=1), atol=1e-12)
    else:
        assert scored.columns == ["id", "y", "model_version"]
        np.testing.assert_allclose(scored["y"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_no_rows_give_an_empty_frame_with_the_answers_columns(task_model: tuple[Task, TabularModel]) -> None:
    task, model = task_model
    scored = score_rows(ScoringModel("1", model, 0.5), synthetic(5, seed=3).head(0), ENTITY, task, "y")
    assert scored.height == 0
    assert scored.columns[0] == "id" and scored.columns[-1] == "model_version"


@pytest.mark.parametrize("dropped", ["id", "carrier", "load"])
def test_a_missing_entity_or_feature_column_is_named(dropped: str) -> None:
    model = _model(TASKS["binary"])
    with pytest.raises(ValueError, match=f"no column\\(s\\) {dropped}"):
        score_rows(
            ScoringModel("1", model, 0.5), synthetic(10, seed=4).drop(dropped), ENTITY, TASKS["binary"], "y"
        )
