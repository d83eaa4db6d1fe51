"""Training and the model artifact on small synthetic data with a known signal: time split, early
stopping that converges, no learning from noise, robust encoding, and a lossless round trip."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from mlplatform.core.evaluation.metrics import classification_metrics
from mlplatform.core.spec import ModelSpec
from mlplatform.core.training.fit import TimeSplit, TrainingError, TrainingResult, train_model
from mlplatform.core.training.model import Encoding, TabularModel
from mlplatform_tests.core.synthetic import CATEGORICAL, NUMERIC, synthetic

SPEC = ModelSpec(
    params={"num_leaves": 15, "min_data_in_leaf": 20},
    num_boost_round=200,
    early_stopping_rounds=20,
    min_rows=500,
)


def auc(model: TabularModel, frame: pl.DataFrame) -> float:
    return classification_metrics(frame["delayed"].to_numpy(), model.predict(frame), 0.5)["auc"]


@pytest.fixture(scope="module")
def data() -> dict[str, pl.DataFrame]:
    return {
        "train": synthetic(3000, 1, missing_share=0.05),
        "validation": synthetic(1000, 2, missing_share=0.05),
        "test": synthetic(1000, 3, missing_share=0.05),
    }


@pytest.fixture(scope="module")
def trained(data: dict[str, pl.DataFrame]) -> TrainingResult:
    return train_model(data["train"], data["validation"], "delayed", CATEGORICAL, NUMERIC, SPEC)


def test_time_split_gives_the_window_before_as_of_in_order() -> None:
    split = TimeSplit.as_of(dt.date(2013, 3, 1), ModelSpec(train_days=3, validation_days=2, test_days=1))

    assert split.train == ["2013-02-23", "2013-02-24", "2013-02-25"]
    assert split.validation == ["2013-02-26", "2013-02-27"]
    assert split.test == ["2013-02-28"]
    assert split.all_days == sorted(split.all_days)


def test_time_split_of_the_default_spec_is_disjoint_and_contiguous() -> None:
    spec = ModelSpec()
    as_of = dt.date(2013, 6, 1)
    split = TimeSplit.as_of(as_of, spec)

    assert (len(split.train), len(split.validation), len(split.test)) == (42, 7, 7)
    assert len(set(split.all_days)) == spec.window_days
    assert max(split.train) < min(split.validation)
    assert max(split.validation) < min(split.test)
    assert split.test[-1] == (as_of - dt.timedelta(days=1)).isoformat()
    days = [dt.date.fromisoformat(d) for d in split.all_days]
    assert all(b - a == dt.timedelta(days=1) for a, b in itertools.pairwise(days))


def test_training_converges_and_learns_the_signal(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    assert trained.converged
    assert 1 <= trained.best_iteration < SPEC.num_boost_round
    assert trained.validation_metrics["auc"] > 0.8
    assert auc(trained.model, data["test"]) > 0.8
    assert trained.rows == {"train": 3000, "validation": 1000}
    assert 0 < trained.threshold < 1
    assert trained.validation_metrics["threshold"] == trained.threshold


def test_importance_ranks_the_informative_features(trained: TrainingResult) -> None:
    importance = trained.importance()

    assert sorted(importance["feature"].to_list()) == sorted([*CATEGORICAL, *NUMERIC])
    assert importance["gain"].min() > 0
    assert importance["feature"][0] == "temp"  # the strongest term of the synthetic logit


def test_training_on_shuffled_labels_learns_nothing(data: dict[str, pl.DataFrame]) -> None:
    rng = np.random.default_rng(11)

    def shuffled(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.Series("delayed", rng.permutation(frame["delayed"].to_numpy())))

    result = train_model(
        shuffled(data["train"]), shuffled(data["validation"]), "delayed", CATEGORICAL, NUMERIC, SPEC
    )

    assert abs(auc(result.model, shuffled(data["test"])) - 0.5) < 0.06


def test_unseen_categories_and_missing_numerics_give_finite_predictions(trained: TrainingResult) -> None:
    odd = pl.DataFrame(
        {
            "carrier": ["ZZ", None, "AA", "ZZ"],
            "temp": [None, None, None, 1e9],
            "load": [None, None, 0.5, -1e9],
        },
        schema={"carrier": pl.String, "temp": pl.Float64, "load": pl.Float64},
    )

    predictions = trained.model.predict(odd)

    assert predictions.shape == (4,)
    assert np.isfinite(predictions).all()
    assert ((predictions > 0) & (predictions < 1)).all()
    for record in odd.to_dicts():
        score = trained.model.booster.predict(trained.model.encoding.row(record))
        assert np.isfinite(score).all()


def test_encoding_row_equals_matrix_row(trained: TrainingResult, data: dict[str, pl.DataFrame]) -> None:
    encoding = trained.model.encoding
    frame = pl.concat(
        [
            data["test"].head(20).select(*CATEGORICAL, *NUMERIC),
            pl.DataFrame(
                {"carrier": ["ZZ", None], "temp": [None, 2.5], "load": [0.1, None]},
                schema={"carrier": pl.String, "temp": pl.Float64, "load": pl.Float64},
            ),
        ]
    )
    matrix = encoding.matrix(frame)

    assert matrix.shape == (22, 3)
    for i, record in enumerate(frame.to_dicts()):
        np.testing.assert_array_equal(encoding.row(record), matrix[i : i + 1])


def test_encoding_uses_sorted_training_vocabulary() -> None:
    frame = pl.DataFrame({"carrier": ["UA", "AA", None, "DL", "AA"], "temp": [1.0, 2.0, 3.0, 4.0, 5.0]})
    encoding = Encoding.fit(frame, ["carrier"], ["temp"])

    assert encoding.vocabulary == [["AA", "DL", "UA"]]
    assert encoding.features == ["carrier", "temp"]
    np.testing.assert_array_equal(encoding.matrix(frame)[:, 0], [2.0, 0.0, np.nan, 1.0, 0.0])
    assert math.isnan(encoding.row({"carrier": "B6", "temp": 1.0})[0, 0])


def test_model_round_trips_through_its_artifacts(
    trained: TrainingResult, data: dict[str, pl.DataFrame]
) -> None:
    """As the registry stores it: the booster's text and the encoding as JSON beside it."""
    encoding = json.loads(json.dumps(trained.model.encoding.to_dict()))
    restored = TabularModel(
        lgb.Booster(model_str=trained.model.booster.model_to_string()), Encoding.from_dict(encoding)
    )

    assert restored.encoding.categorical == CATEGORICAL
    assert restored.encoding.numeric == NUMERIC
    assert restored.encoding.vocabulary == trained.model.encoding.vocabulary
    np.testing.assert_array_equal(restored.predict(data["test"]), trained.model.predict(data["test"]))


def test_too_few_rows_raise(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(TrainingError, match="only 499 training rows; the spec asks for 500"):
        train_model(data["train"].head(499), data["validation"], "delayed", CATEGORICAL, NUMERIC, SPEC)


def test_single_class_label_raises(data: dict[str, pl.DataFrame]) -> None:
    one_class = data["train"].with_columns(pl.lit(0, dtype=pl.Int64).alias("delayed"))

    with pytest.raises(TrainingError, match="label 'delayed' has a single class"):
        train_model(one_class, data["validation"], "delayed", CATEGORICAL, NUMERIC, SPEC)


def test_empty_validation_raises(data: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(TrainingError, match="no validation rows"):
        train_model(data["train"], data["validation"].clear(), "delayed", CATEGORICAL, NUMERIC, SPEC)
