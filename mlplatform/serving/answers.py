"""A pipeline's answer to a prediction request, its keys named from the spec's label.

A police-stop model answers ``{"stopped": true, "stopped_probability": 0.81}``, a flight model
``{"delayed": ...}``: never a key borrowed from another pipeline. Per task:

- binary: ``<label>`` (the decision at the served version's threshold) and
  ``<label>_probability``;
- multiclass: ``<label>`` (the most probable class, by name) and ``<label>_probabilities`` (every
  class's probability, by name);
- regression: ``<label>`` (the predicted value).

Every answer also carries ``request_id``, ``model_version`` and ``variant``. The same fields, typed,
are the pipeline's response schema on the OpenAPI page.

A large batch's answers are written by polars from columns (``batch_body``): the same bytes as the
answers built one dict per record and encoded (``values``), in about half the time (0.41 against
0.73 ms for 1,000 binary answers), without 2,000 short-lived dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, create_model

from mlplatform.core.spec import PipelineSpec


class Answers:
    def __init__(self, spec: PipelineSpec) -> None:
        self.name, self.label, self.task = spec.name, spec.label.name, spec.task_def
        self.classes = list(self.task.classes)
        if self.label in ("request_id", "model_version", "variant"):
            raise ValueError(f"label.name {self.label!r} would collide with an answer's own key")

    def values(self, predictions: np.ndarray, thresholds: list[float]) -> list[dict[str, Any]]:
        """The label's keys of each row's answer, from the model's predictions (one row each)."""
        label = self.label
        if self.task.kind == "binary":
            return [
                {label: p >= t, f"{label}_probability": p}
                for p, t in zip(predictions.tolist(), thresholds, strict=True)
            ]
        if self.task.kind == "multiclass":
            best = predictions.argmax(axis=1).tolist()
            return [
                {label: self.classes[k], f"{label}_probabilities": dict(zip(self.classes, row, strict=True))}
                for k, row in zip(best, predictions.tolist(), strict=True)
            ]
        return [{label: v} for v in predictions.tolist()]

    def batch_body(
        self,
        ids: list[str],
        predictions: np.ndarray,
        thresholds: list[float],
        versions: list[str],
        variants: list[str],
    ) -> bytes:
        """A batch request's answer, ``{"predictions": [...]}``, one answer per row of
        ``predictions``, keyed as ``values`` keys them."""
        label = self.label
        columns = [pl.Series("request_id", ids, pl.String)]
        if self.task.kind == "binary":
            columns += [
                pl.Series(label, predictions >= np.asarray(thresholds), pl.Boolean),
                pl.Series(f"{label}_probability", predictions, pl.Float64),
            ]
        elif self.task.kind == "multiclass":
            columns += [
                pl.Series(label, self.classes, pl.String).gather(predictions.argmax(axis=1)),
                pl.DataFrame(predictions, schema=self.classes, orient="row").to_struct(
                    f"{label}_probabilities"
                ),
            ]
        else:
            columns.append(pl.Series(label, predictions, pl.Float64))
        columns += [
            pl.Series("model_version", versions, pl.String),
            pl.Series("variant", variants, pl.String),
        ]
        return b'{"predictions":' + pl.DataFrame(columns).write_json().encode() + b"}"

    def model(self) -> type[BaseModel]:
        """One answer, as a pydantic model: what the OpenAPI page shows for this pipeline."""
        label = self.label
        fields: dict[str, Any] = {"request_id": (str, ...)}
        if self.task.kind == "binary":
            fields[label] = (
                bool,
                Field(description=f"Whether {label}: the probability at the model's threshold"),
            )
            fields[f"{label}_probability"] = (
                float,
                Field(ge=0, le=1, description=f"Probability that {label}"),
            )
        elif self.task.kind == "multiclass":
            fields[label] = (str, Field(description=f"The most probable {label}: one of {self.classes}"))
            fields[f"{label}_probabilities"] = (
                dict[str, float],
                Field(description=f"The probability of each {label} ({', '.join(self.classes)})"),
            )
        else:
            fields[label] = (float, Field(description=f"The predicted {label}"))
        fields["model_version"] = (str, ...)
        fields["variant"] = (str, Field(description="champion or challenger"))
        return create_model(
            f"{self.name}_answer",
            __config__=ConfigDict(title=f"{self.name} answer", allow_inf_nan=False),
            **fields,
        )

    def schemas(self) -> dict[str, Any]:
        """The JSON schema of one answer and of a batch's ``{"predictions": [...]}``."""
        one = self.model().model_json_schema()
        batch = {
            "title": f"{self.name} batch answer",
            "type": "object",
            "properties": {"predictions": {"type": "array", "items": one}},
            "required": ["predictions"],
        }
        return {"anyOf": [one, batch]}
