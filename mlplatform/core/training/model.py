"""A trained LightGBM model with its categorical encoding, usable offline and online.

Categorical features are encoded as integer codes from the training vocabulary and passed to
LightGBM natively (``categorical_feature``). The encoding (column order and vocabulary) is stored
beside the booster as ``encoding.json`` in the training run, not inside the booster: a booster
carrying LightGBM's ``pandas_categorical`` is refused by MLflow's own serving for any pandas input,
while a plain numeric booster can be served by ``mlflow models serve`` from ready-made, encoded
feature rows. Unseen categories and nulls become NaN, which LightGBM treats as missing.

A few rows (the online path) are encoded in plain Python and scored on one thread: a polars query
and OpenMP's thread hand-off each cost more than a few rows' trees. Many rows are encoded in one
polars query (categoricals cast to an Enum of the vocabulary, whose physical codes are the codes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl

FEW_ROWS = 32  # up to this many rows, Python encoding and one thread beat a polars query and OpenMP


@dataclass
class Encoding:
    """Column order and categorical vocabulary: how feature rows become a LightGBM matrix."""

    categorical: list[str]
    numeric: list[str]
    vocabulary: list[list[str]]
    _codes: dict[str, dict[str, float]] = field(init=False, repr=False)
    _enums: dict[str, pl.Enum] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._codes = {
            name: {value: float(code) for code, value in enumerate(values)}
            for name, values in zip(self.categorical, self.vocabulary, strict=True)
        }
        self._enums = {
            name: pl.Enum(values) for name, values in zip(self.categorical, self.vocabulary, strict=True)
        }

    @classmethod
    def fit(cls, frame: pl.DataFrame, categorical: Sequence[str], numeric: Sequence[str]) -> Encoding:
        vocabulary = [sorted(frame[c].drop_nulls().cast(pl.String).unique().to_list()) for c in categorical]
        return cls(list(categorical), list(numeric), vocabulary)

    @property
    def features(self) -> list[str]:
        return [*self.categorical, *self.numeric]

    def to_dict(self) -> dict:
        return {"categorical": self.categorical, "numeric": self.numeric, "vocabulary": self.vocabulary}

    @classmethod
    def from_dict(cls, data: Mapping[str, list]) -> Encoding:
        return cls(list(data["categorical"]), list(data["numeric"]), [list(v) for v in data["vocabulary"]])

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        """Every row, in one polars query: an unseen category or a null is not in the Enum (null)."""
        encoded = frame.select(
            *[
                pl.col(name)
                .cast(pl.String)
                .cast(self._enums[name], strict=False)
                .to_physical()
                .cast(pl.Float64)
                for name in self.categorical
            ],
            *[pl.col(name).cast(pl.Float64) for name in self.numeric],
        )
        return encoded.to_numpy()

    def rows(self, records: Sequence[Mapping[str, object]]) -> np.ndarray:
        """A few records as a matrix, without a polars query (the online hot path)."""
        matrix = []
        for record in records:
            values = []
            for name in self.categorical:
                value = record.get(name)
                values.append(math.nan if value is None else self._codes[name].get(str(value), math.nan))
            for name in self.numeric:
                value = record.get(name)
                values.append(math.nan if value is None else float(value))  # type: ignore[arg-type]
            matrix.append(values)
        return np.asarray(matrix, dtype=np.float64).reshape(len(matrix), len(self.features))

    def row(self, record: Mapping[str, object]) -> np.ndarray:
        """One record as a 1 x n matrix."""
        return self.rows([record])


@dataclass
class TabularModel:
    booster: lgb.Booster
    encoding: Encoding

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        """A probability per row (binary), a row of class probabilities (multiclass) or a value."""
        if frame.height <= FEW_ROWS:
            return np.asarray(self.booster.predict(self.encoding.rows(frame.rows(named=True)), num_threads=1))
        return np.asarray(self.booster.predict(self.encoding.matrix(frame)))

    def predict_record(self, record: Mapping[str, object]) -> np.ndarray:
        """One record's prediction (a number, or one probability per class), on one thread: OpenMP's
        thread hand-off costs more than a single row's trees, and under CPU contention it costs
        milliseconds."""
        return np.asarray(self.booster.predict(self.encoding.row(record), num_threads=1)[0])
