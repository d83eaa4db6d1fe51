"""The flight features, failing on one value a request may legally send (``dest`` "POISON"): a
stand-in for any scoring error the contract cannot foresee, to show that it fails only its request."""

from __future__ import annotations

import polars as pl

from mlplatform.defs.flight_delay import features

POISON = "POISON"


def _refuse_poison(dest: pl.Series) -> pl.Series:
    if (dest == POISON).any():
        raise ValueError("a poison record reached the feature function")
    return dest


def build_features(flights: features.Frame, references: dict[str, features.Frame]) -> features.Frame:
    checked = flights.with_columns(pl.col("dest").map_batches(_refuse_poison, return_dtype=pl.String))
    return features.build_features(checked, references)
