"""Small tabular data with a learnable label, for model and gate tests that need no real flights."""

from __future__ import annotations

import numpy as np
import polars as pl

CATEGORICAL = ["carrier"]
NUMERIC = ["temp", "load"]


def synthetic(n: int, seed: int, missing_share: float = 0.0) -> pl.DataFrame:
    """A label driven by one categorical and two numeric features, with a row key ``id``;
    ``missing_share`` of ``temp`` is null."""
    rng = np.random.default_rng(seed)
    carrier = rng.choice(["AA", "B6", "DL", "UA"], n)
    temp = rng.normal(size=n)
    load = rng.uniform(size=n)
    logit = 1.5 * temp + 1.5 * (carrier == "AA") - 1.5 * (carrier == "UA") + 2.0 * (load - 0.5)
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    temp[rng.uniform(size=n) < missing_share] = np.nan
    frame = pl.DataFrame(
        {"id": np.arange(n), "carrier": carrier, "temp": temp, "load": load, "delayed": label}
    )
    return frame.with_columns(pl.col("temp").fill_nan(None))


def synthetic_target(n: int, seed: int, kind: str) -> pl.DataFrame:
    """The same features with a multiclass label (0, 1, 2: low, mid, high of the same signal) or a
    regression label (the signal plus noise) in ``target``."""
    frame = synthetic(n, seed).drop("delayed")
    rng = np.random.default_rng(seed + 1000)
    carrier = frame["carrier"].to_numpy()
    signal = 1.5 * frame["temp"].to_numpy() + 1.5 * (carrier == "AA") - 1.5 * (carrier == "UA")
    signal = signal + 2.0 * (frame["load"].to_numpy() - 0.5) + rng.normal(scale=0.7, size=n)
    if kind == "regression":
        return frame.with_columns(target=pl.Series(10.0 + 3.0 * signal))
    return frame.with_columns(target=pl.Series(np.digitize(signal, [-1.0, 1.0]).astype(np.int64)))
