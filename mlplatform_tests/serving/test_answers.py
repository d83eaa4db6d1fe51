"""A large batch's answers written from columns are the very bytes of the answers built one dict per
record, for every task: clients cannot tell which way their batch was answered."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic_core import to_json

from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.serving.answers import Answers

CLASSES = ["on time", 'late "a bit"', "late"]


def _spec(task: str) -> PipelineSpec:
    spec = load_spec("flight_delay")
    classes = CLASSES if task == "multiclass" else None
    return spec.model_copy(update={"task": task, "label": spec.label.model_copy(update={"classes": classes})})


def _predictions(task: str, rows: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    if task == "multiclass":
        weights = rng.random((rows, len(CLASSES)))
        return weights / weights.sum(axis=1, keepdims=True)
    if task == "binary":  # the ends and a probability equal to its threshold among them
        return np.concatenate([[0.0, 1.0, 0.5], rng.random(rows - 3)])
    return rng.normal(0, 1e6, rows)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_batch_written_from_columns_is_the_text_of_its_answers_one_by_one(task: str) -> None:
    answers, rows = Answers(_spec(task)), 200
    predictions = _predictions(task, rows)
    ids = [f"req:{n}" for n in range(rows)]
    thresholds = [0.5 if n % 3 else 0.25 for n in range(rows)]
    versions = ["7" if n % 4 else "8" for n in range(rows)]
    variants = ["champion" if n % 4 else "challenger" for n in range(rows)]

    one_by_one = to_json(
        {
            "predictions": [
                {"request_id": i, **value, "model_version": version, "variant": variant}
                for i, value, version, variant in zip(
                    ids, answers.values(predictions, thresholds), versions, variants, strict=True
                )
            ]
        }
    )

    assert answers.batch_body(ids, predictions, thresholds, versions, variants) == one_by_one
