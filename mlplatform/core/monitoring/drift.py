"""Feature drift: a new day's features against the champion's training window. Plain Python.

Per feature, the reference window becomes a ``FeatureProfile`` (its bins and the share of rows
in each); a new partition is measured against it with the population stability index (PSI) over
the same bins and, for numeric features, a two-sample Kolmogorov-Smirnov test. Missing values
are a bin of their own in both kinds: a feed that starts dropping a column is drift the model
feels (it sees a null instead of a value), so it must move the PSI, not vanish from it.

Why these choices:

- Numeric bins are cut at the reference's quantiles (deciles by default), so every bin holds
  about the same share of the reference and PSI weighs the whole range evenly. The outer bins
  are open, so a current value beyond anything seen in training still lands in a bin.
- Categorical bins are the reference's most frequent categories; the rare tail and every
  category the reference never saw share one "other" bin. A new carrier or destination thus
  shows up as "other" growing, and a long tail cannot make the table unreadable.
- KS complements PSI for numeric features: it needs no binning, so it sees a shift inside a bin
  or within a feature whose quantiles collapse to one bin (a constant in the window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import polars as pl
from scipy.stats import ks_2samp

MISSING = "missing"
OTHER = "other"

# A 56-day window is ~50,000 rows per feature. 10,000 reference values keep the KS test's cost
# (and the exact p-value) and a profile's memory bounded (80 kB per feature). The price: the
# subsample's CDF is within 0.0136 of the whole window's (DKW bound, 95%), so the statistic can
# move by that much; a day of ~900 rows has its own sampling error of 0.045.
KS_REFERENCE_SAMPLE = 10_000

DRIFT_SCHEMA = {
    "feature": pl.String,
    "kind": pl.String,
    "psi": pl.Float64,
    "ks_statistic": pl.Float64,
    "ks_p_value": pl.Float64,
    "reference_missing": pl.Float64,
    "current_missing": pl.Float64,
    "rows": pl.Int64,
    "top_bin": pl.String,
}


@dataclass(frozen=True)
class FeatureProfile:
    """The reference distribution of one feature: its bins and the share of rows in each."""

    name: str
    kind: Literal["numeric", "categorical"]
    bins: tuple[str, ...]  # human-readable bin labels, the last one is "missing"
    shares: tuple[float, ...]  # reference share per bin (sums to 1), same order as bins
    edges: tuple[float, ...]  # numeric: inner cut points from the reference quantiles; () for categorical
    categories: tuple[str, ...]  # categorical: the reference categories kept as their own bins
    sample: np.ndarray | None = field(default=None, compare=False, repr=False)  # numeric, for KS


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index of two share vectors over the same bins.

    PSI = sum((actual - expected) * ln(actual / expected)). Shares below ``epsilon`` are raised
    to it so an empty bin gives a large but finite term, not inf. The floored vectors are not
    renormalized: every term is non-negative whatever the totals (its two factors share a sign),
    so flooring only touches the bins that were nearly empty and the textbook value is kept
    exactly wherever both shares exceed ``epsilon``.
    """
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    if expected.shape != actual.shape or expected.ndim != 1:
        raise ValueError(
            f"psi needs two share vectors of one length, got {expected.shape} and {actual.shape}"
        )
    if (expected < 0).any() or (actual < 0).any():
        raise ValueError("psi needs non-negative shares")
    expected = np.maximum(expected, epsilon)
    actual = np.maximum(actual, epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _number(value: float) -> str:
    return np.format_float_positional(value, precision=6, trim="0")


def _numeric_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    bounds = ["-inf", *(_number(e) for e in edges), "+inf"]
    opens = ["(", *(["["] * len(edges))]
    return (*(f"{o}{lo}, {hi})" for o, lo, hi in zip(opens, bounds, bounds[1:], strict=False)), MISSING)


def _numeric_values(name: str, values: pl.Series) -> pl.Series:
    """The values as Float64 with NaN turned into null: both mean "missing" here."""
    if not values.dtype.is_numeric():
        raise ValueError(f"numeric feature {name!r} has type {values.dtype}, not a number")
    as_float = values.cast(pl.Float64)
    return as_float.fill_nan(None)


def _quantile_edges(present: np.ndarray, bins: int) -> tuple[float, ...]:
    """Inner cut points: the reference's quantiles, and a cut after every heavy value.

    Bins are closed on the left, [edge, next edge), and the cut points are taken from the data
    ("higher" quantiles), so labels show real values and a feature with few distinct values
    (``engines``) gets a bin per common value. A value holding at least one bin's worth of the
    reference (1/bins) also gets a cut right after it, giving it a bin of its own: without it a
    point mass at the minimum (``precip`` is 0 on most hours) would share its bin with every
    larger value, and a rainy day would not move the PSI. A cut at or below the minimum would
    open a bin no reference row is in, so there is none: a constant feature gets one bin.
    """
    if present.size == 0:
        return ()
    cuts = set(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="higher").tolist())
    values, counts = np.unique(present, return_counts=True)
    heavy = counts * bins >= present.size
    cuts |= set(values[1:][heavy[:-1]].tolist())
    return tuple(sorted(float(c) for c in cuts if c > values[0]))


def _numeric_profile(name: str, values: pl.Series, bins: int, ks_sample: int, seed: int) -> FeatureProfile:
    present = _numeric_values(name, values).drop_nulls().to_numpy()
    edges = _quantile_edges(present, bins)
    sample = present
    if present.size > ks_sample:
        sample = np.random.default_rng(seed).choice(present, size=ks_sample, replace=False)
    profile = FeatureProfile(name, "numeric", _numeric_labels(edges), (), edges, (), np.sort(sample))
    return _with_shares(profile, values)


def _categorical_profile(name: str, values: pl.Series, max_categories: int) -> FeatureProfile:
    counts = values.cast(pl.String).drop_nulls().alias("category").value_counts(name="rows")
    # Most frequent first; ties broken by name so the same window always gives the same bins.
    # Shares are counted by position, so a category literally called "other" stays correct.
    ranked = counts.sort(["rows", "category"], descending=[True, False])
    kept = ranked.head(max_categories)["category"].to_list()
    profile = FeatureProfile(name, "categorical", (*kept, OTHER, MISSING), (), (), tuple(kept), None)
    return _with_shares(profile, values)


def _with_shares(profile: FeatureProfile, values: pl.Series) -> FeatureProfile:
    return replace(profile, shares=tuple(float(s) for s in bin_shares(profile, values)))


def bin_shares(profile: FeatureProfile, values: pl.Series) -> np.ndarray:
    """Shares of `values` in the profile's bins (the same bins as the reference, missing last)."""
    if values.len() == 0:
        raise ValueError(f"feature {profile.name!r} has no rows to compute bin shares of")
    missing_bin = len(profile.bins) - 1
    if profile.kind == "numeric":
        numbers = _numeric_values(profile.name, values).to_numpy()
        index = np.searchsorted(np.asarray(profile.edges, dtype=float), numbers, side="right")
        index[np.isnan(numbers)] = missing_bin
    else:
        labels = values.cast(pl.String)
        positions = labels.replace_strict(
            list(profile.categories),
            list(range(len(profile.categories))),
            default=len(profile.categories),  # the "other" bin: rare or never seen in the reference
            return_dtype=pl.Int64,
        )
        index = positions.set(labels.is_null(), missing_bin).to_numpy()
    return np.bincount(index, minlength=len(profile.bins)) / values.len()


def reference_profiles(
    frame: pl.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    bins: int = 10,
    max_categories: int = 20,
    ks_sample: int = KS_REFERENCE_SAMPLE,
    seed: int = 0,
) -> dict[str, FeatureProfile]:
    """The profile of every named feature in the reference (training window) frame.

    ``bins`` quantile bins per numeric feature (fewer when cut points coincide), at most
    ``max_categories`` own bins per categorical one; numeric features keep at most ``ks_sample``
    values (a seeded random subsample) for the KS test.
    """
    if frame.height == 0:
        raise ValueError("the reference frame has no rows: there is no distribution to compare against")
    if bins < 1 or max_categories < 1 or ks_sample < 1:
        raise ValueError(f"bins ({bins}), max_categories ({max_categories}) and ks_sample must be >= 1")
    absent = [c for c in [*numeric, *categorical] if c not in frame.columns]
    if absent:
        raise ValueError(f"the reference frame has no column(s) {absent}")
    profiles = {name: _numeric_profile(name, frame[name], bins, ks_sample, seed) for name in numeric}
    profiles |= {name: _categorical_profile(name, frame[name], max_categories) for name in categorical}
    return profiles


def _ks(profile: FeatureProfile, values: pl.Series) -> tuple[float | None, float | None]:
    """(statistic, p-value), or (None, None) for a categorical feature or an empty side.

    scipy's "auto" method: the exact p-value while both sides have at most 10,000 values (a day
    against the reference subsample: 6-70 ms per feature), the asymptotic one beyond. The
    asymptotic one alone would be faster but is off by 15% at 100 values a side, and undefined
    for a single value on each.
    """
    if profile.sample is None or profile.sample.size == 0:
        return None, None
    current = _numeric_values(profile.name, values).drop_nulls().to_numpy()
    if current.size == 0:
        return None, None
    result = ks_2samp(profile.sample, current)
    return float(result.statistic), float(result.pvalue)


def drift_table(
    profiles: Mapping[str, FeatureProfile], current: pl.DataFrame, ks: bool = True
) -> pl.DataFrame:
    """One row per feature, most drifted first: feature, kind, psi, ks_statistic, ks_p_value
    (null for categorical, and for every feature when ``ks`` is off), reference_missing,
    current_missing (shares), rows (current rows), top_bin (the bin whose share moved most, e.g.
    "[12.0, 15.0)" or "EV" or "missing")."""
    if current.height == 0:
        raise ValueError("the current frame has no rows: drift needs at least one row to measure")
    absent = [name for name in profiles if name not in current.columns]
    if absent:
        raise ValueError(f"the current frame has no column(s) {absent} to measure drift on")
    rows = []
    for name, profile in profiles.items():
        expected = np.asarray(profile.shares)
        actual = bin_shares(profile, current[name])
        statistic, p_value = _ks(profile, current[name]) if ks else (None, None)
        rows.append(
            {
                "feature": name,
                "kind": profile.kind,
                "psi": psi(expected, actual),
                "ks_statistic": statistic,
                "ks_p_value": p_value,
                "reference_missing": float(expected[-1]),
                "current_missing": float(actual[-1]),
                "rows": current.height,
                "top_bin": profile.bins[int(np.argmax(np.abs(actual - expected)))],
            }
        )
    table = pl.DataFrame(rows, schema=DRIFT_SCHEMA)
    return table.sort(["psi", "feature"], descending=[True, False])
