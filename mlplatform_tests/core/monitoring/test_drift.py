"""Drift statistics on distributions with known answers, and on real flights: January against July.

PSI values are computed by hand from the formula; KS statistics are compared with their
theoretical values for shifted normal and uniform distributions (within the sampling error of the
sizes used here); bins are checked label by label on small frames built in the test.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from mlplatform.core.data.landing import read_landing_file
from mlplatform.core.data.replay import replay
from mlplatform.core.evaluation.report import drift_markdown
from mlplatform.core.features.compute import compute_features
from mlplatform.core.monitoring.drift import FeatureProfile, bin_shares, drift_table, psi, reference_profiles
from mlplatform.core.spec import PipelineSpec

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

EPSILON = 1e-4  # psi's default floor for empty bins


def numeric_frame(values: np.ndarray | list[float | None], name: str = "x") -> pl.DataFrame:
    return pl.DataFrame({name: values}, schema={name: pl.Float64})


def drift_of(reference: list | np.ndarray, current: list | np.ndarray) -> dict[str, Any]:
    """The drift row of one numeric feature ``x``."""
    profiles = reference_profiles(numeric_frame(reference), numeric=["x"], categorical=[])
    return drift_table(profiles, numeric_frame(current)).row(0, named=True)


# ---- psi ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shares", [[1.0], [0.5, 0.5], [0.1, 0.2, 0.7], [0.0, 0.3, 0.7]])
def test_psi_of_identical_shares_is_zero(shares: list[float]) -> None:
    assert psi(np.array(shares), np.array(shares)) == 0.0


@pytest.mark.parametrize(
    ("expected", "actual", "value"),
    [
        ([0.5, 0.5], [0.25, 0.75], 0.25 * math.log(2) + 0.25 * math.log(1.5)),  # 0.2747
        ([0.5, 0.5], [0.9, 0.1], 0.4 * math.log(1.8) + 0.4 * math.log(5)),  # 0.8789
        # An empty bin is floored at epsilon, without renormalizing the others.
        ([0.5, 0.5, 0.0], [0.5, 0.4, 0.1], 0.1 * math.log(1.25) + (0.1 - EPSILON) * math.log(0.1 / EPSILON)),
        ([1.0, 0.0], [0.0, 1.0], 2 * (1 - EPSILON) * math.log(1 / EPSILON)),
    ],
)
def test_psi_matches_the_hand_computed_value(
    expected: list[float], actual: list[float], value: float
) -> None:
    got = psi(np.array(expected), np.array(actual))
    assert math.isfinite(got)
    assert got == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize(
    ("first", "second"),
    [([0.5, 0.5], [0.25, 0.75]), ([0.2, 0.3, 0.5], [0.6, 0.0, 0.4]), ([1.0, 0.0], [0.0, 1.0])],
)
def test_psi_is_symmetric(first: list[float], second: list[float]) -> None:
    # (a - e) * ln(a / e) is unchanged when a and e swap, term by term.
    assert psi(np.array(first), np.array(second)) == pytest.approx(psi(np.array(second), np.array(first)))


def test_psi_refuses_share_vectors_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="one length"):
        psi(np.array([0.5, 0.5]), np.array([1.0]))


# ---- numeric features ---------------------------------------------------------------------------


def test_a_sample_against_itself_does_not_drift() -> None:
    sample = np.random.default_rng(1).normal(size=5000)

    row = drift_of(sample, sample)

    assert row["psi"] == pytest.approx(0.0, abs=1e-12)
    assert (row["ks_statistic"], row["ks_p_value"]) == (0.0, 1.0)


def test_a_normal_shifted_by_one_sd_drifts_with_the_theoretical_ks() -> None:
    rng = np.random.default_rng(2)
    # KS between N(0, 1) and N(1, 1) is the largest CDF gap, at x = 0.5: 2 * Phi(0.5) - 1 = 0.3829.
    theoretical = 2 * norm.cdf(0.5) - 1

    row = drift_of(rng.normal(size=20_000), rng.normal(loc=1.0, size=5000))

    assert row["psi"] > 0.2
    assert row["ks_statistic"] == pytest.approx(theoretical, abs=0.03)  # 95% band here: +-0.023
    assert row["ks_p_value"] < 1e-6


def test_a_uniform_shifted_by_a_tenth_has_ks_of_a_tenth() -> None:
    rng = np.random.default_rng(3)

    row = drift_of(rng.uniform(size=20_000), rng.uniform(size=5000) + 0.1)

    assert row["ks_statistic"] == pytest.approx(0.1, abs=0.03)


def test_values_outside_the_reference_range_land_in_the_open_outer_bins() -> None:
    profile = reference_profiles(numeric_frame(np.linspace(0, 1, 101)), ["x"], [])["x"]

    shares = bin_shares(profile, pl.Series([-5.0, 0.5, 7.0, 1e9]))

    assert profile.bins[0].startswith("(-inf, ") and profile.bins[-2].endswith(", +inf)")
    assert shares[0] == 0.25 and shares[-2] == 0.5
    assert shares.sum() == pytest.approx(1.0)


def test_a_large_reference_keeps_a_seeded_subsample_for_ks() -> None:
    reference = numeric_frame(np.random.default_rng(4).normal(size=50_000))

    first = reference_profiles(reference, ["x"], [])["x"]
    second = reference_profiles(reference, ["x"], [])["x"]
    row = drift_table({"x": first}, reference).row(0, named=True)

    assert first.sample is not None and second.sample is not None
    assert first.sample.size == 10_000
    assert np.array_equal(first.sample, second.sample)
    # The documented cost: the subsample's CDF stays within the DKW 95% band (0.0136) of the whole.
    assert row["ks_statistic"] < 0.0136
    assert row["psi"] == pytest.approx(0.0, abs=1e-12)  # the bins come from all 50,000 values


# ---- missing values -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_feature_that_became_half_missing_drifts(missing: float | None) -> None:
    values = np.random.default_rng(5).normal(size=2000)
    current = [missing if i % 2 else v for i, v in enumerate(values)]

    row = drift_of(values, current)

    assert row["reference_missing"] == 0.0
    assert row["current_missing"] == 0.5
    assert row["psi"] > 0.2
    assert row["top_bin"] == "missing"


def test_missing_values_of_the_reference_are_its_missing_share() -> None:
    reference = [1.0, 2.0, 3.0, None, 4.0, float("nan"), 5.0, 6.0]

    profile = reference_profiles(numeric_frame(reference), ["x"], [])["x"]
    row = drift_of(reference, [1.0, 2.0, None, None])

    assert profile.bins[-1] == "missing"
    assert profile.shares[-1] == 0.25
    assert profile.sample is not None and profile.sample.size == 6
    assert (row["reference_missing"], row["current_missing"]) == (0.25, 0.5)


# ---- bins of numeric features -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "bins", "shares"),
    [
        pytest.param([3.0] * 100, ("(-inf, +inf)", "missing"), (1.0, 0.0), id="constant"),
        pytest.param(
            [1.0] * 10 + [2.0] * 80 + [4.0] * 10,
            ("(-inf, 2.0)", "[2.0, 4.0)", "[4.0, +inf)", "missing"),
            (0.1, 0.8, 0.1, 0.0),
            id="few-distinct-values-one-bin-each",
        ),
        pytest.param(
            [0.0] * 90 + [0.1 * k for k in range(1, 11)],
            ("(-inf, 0.1)", "[0.1, +inf)", "missing"),
            (0.9, 0.1, 0.0),
            id="point-mass-at-the-minimum",
        ),
        pytest.param(
            [float(k) for k in range(1, 21)] + [50.0] * 80,
            ("(-inf, 11.0)", "[11.0, 50.0)", "[50.0, +inf)", "missing"),
            (0.1, 0.1, 0.8, 0.0),
            id="point-mass-at-the-maximum",
        ),
        pytest.param([1.0, 2.0, None, None], ("(-inf, 2.0)", "[2.0, +inf)", "missing"), (0.25, 0.25, 0.5)),
        pytest.param([None, None], ("(-inf, +inf)", "missing"), (0.0, 1.0), id="all-missing"),
        pytest.param(
            list(range(100)),
            ("(-inf, 10.0)", *(f"[{k}.0, {k + 10}.0)" for k in range(10, 90, 10)), "[90.0, +inf)", "missing"),
            (*[0.1] * 10, 0.0),
            id="deciles",
        ),
    ],
)
def test_numeric_bins_follow_the_reference(
    values: list[float | None], bins: tuple[str, ...], shares: tuple[float, ...]
) -> None:
    profile = reference_profiles(numeric_frame(values), ["x"], [])["x"]

    assert profile.bins == bins
    assert profile.shares == pytest.approx(shares)
    assert len(profile.edges) == len(bins) - 2
    assert profile.categories == ()


def test_a_constant_reference_moves_only_the_ks_test() -> None:
    # One bin cannot show a move; KS sees the whole current sample above the reference's value.
    row = drift_of([3.0] * 100, [4.0] * 10)

    assert row["psi"] == 0.0
    assert row["ks_statistic"] == 1.0


def test_rain_after_a_dry_window_moves_the_psi() -> None:
    # precip is 0 on most hours: zero gets a bin of its own, so a rainy day is not hidden.
    row = drift_of([0.0] * 95 + [0.1] * 5, [0.0] * 50 + [0.3] * 50)

    # Bins (-inf, 0.1) and [0.1, +inf): shares 0.95, 0.05 before and 0.5, 0.5 now.
    assert row["psi"] == pytest.approx(0.45 * math.log(0.95 / 0.5) + 0.45 * math.log(0.5 / 0.05), rel=1e-9)


def test_ks_is_null_when_either_side_has_no_values() -> None:
    assert drift_of([None, None], [1.0, 2.0])["ks_statistic"] is None
    assert drift_of([1.0, 2.0], [None, None])["ks_p_value"] is None


# ---- categorical features -----------------------------------------------------------------------


def categorical_profile(values: Sequence[str | None], max_categories: int = 20) -> FeatureProfile:
    frame = pl.DataFrame({"carrier": values}, schema={"carrier": pl.String})
    return reference_profiles(frame, [], ["carrier"], max_categories=max_categories)["carrier"]


def test_categorical_shares_from_even_to_ninety_ten() -> None:
    profile = categorical_profile(["AA"] * 50 + ["EV"] * 50)
    current = pl.DataFrame({"carrier": ["AA"] * 90 + ["EV"] * 10})

    row = drift_table({"carrier": profile}, current).row(0, named=True)

    assert profile.bins == ("AA", "EV", "other", "missing")
    assert row["psi"] == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5), rel=1e-9)
    assert (row["kind"], row["ks_statistic"], row["ks_p_value"]) == ("categorical", None, None)


def test_an_unseen_category_goes_to_other() -> None:
    profile = categorical_profile(["AA", "EV", "EV", None])
    current = pl.DataFrame({"carrier": ["EV", "ZZ", "ZZ", None]})

    row = drift_table({"carrier": profile}, current).row(0, named=True)

    assert profile.bins == ("EV", "AA", "other", "missing")  # most frequent first
    assert profile.shares == (0.5, 0.25, 0.0, 0.25)
    assert bin_shares(profile, current["carrier"]).tolist() == [0.25, 0.0, 0.5, 0.25]
    assert row["top_bin"] == "other"
    assert row["psi"] > 0.2


def test_rare_categories_beyond_max_categories_are_pooled_as_other() -> None:
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] * 1 + ["f"] * 3

    profile = categorical_profile(values, max_categories=3)

    # c and f tie at 3: the name decides, so the same window always gives the same bins.
    assert profile.categories == ("a", "b", "c")
    assert profile.bins == ("a", "b", "c", "other", "missing")
    assert profile.shares == pytest.approx((5 / 18, 4 / 18, 3 / 18, 6 / 18, 0.0))
    assert profile.edges == () and profile.sample is None


@pytest.mark.parametrize("name", ["rows", "category", "n"])
def test_any_feature_name_works(name: str) -> None:
    frame = pl.DataFrame({name: ["a", "a", "b", None]})

    profile = reference_profiles(frame, [], [name])[name]

    assert profile.bins == ("a", "b", "other", "missing")
    assert profile.shares == (0.5, 0.25, 0.0, 0.25)


# ---- the table ----------------------------------------------------------------------------------


def test_drift_table_orders_by_psi_and_names_the_bin_that_moved_most() -> None:
    reference = pl.DataFrame(
        {
            "calm": [float(k) for k in range(100)],
            "shifted": [float(k) for k in range(100)],
            "carrier": ["AA"] * 60 + ["EV"] * 20 + ["B6"] * 20,
        }
    )
    current = pl.DataFrame(
        {
            "calm": [float(k) for k in range(0, 100, 5)],
            "shifted": [15.0] * 20,
            "carrier": ["AA"] * 10 + ["EV"] * 9 + ["B6"] * 1,
        }
    )
    profiles = reference_profiles(reference, ["calm", "shifted"], ["carrier"])

    table = drift_table(profiles, current)

    assert table.columns == [
        "feature", "kind", "psi", "ks_statistic", "ks_p_value",
        "reference_missing", "current_missing", "rows", "top_bin",
    ]  # fmt: skip
    assert table["feature"].to_list() == ["shifted", "carrier", "calm"]
    assert table["psi"].to_list() == sorted(table["psi"].to_list(), reverse=True)
    assert table["top_bin"].to_list()[:2] == ["[10.0, 20.0)", "EV"]
    assert table["psi"][2] == pytest.approx(0.0, abs=1e-12)  # every decile holds 2 of 20 values
    assert table["rows"].to_list() == [20, 20, 20]
    assert table["kind"].to_list() == ["numeric", "categorical", "numeric"]


def test_an_empty_current_frame_is_refused() -> None:
    profiles = reference_profiles(numeric_frame([1.0, 2.0]), ["x"], [])

    with pytest.raises(ValueError, match="current frame has no rows"):
        drift_table(profiles, numeric_frame([]))


def test_a_feature_missing_from_the_current_frame_is_named() -> None:
    profiles = reference_profiles(numeric_frame([1.0, 2.0]), ["x"], [])

    with pytest.raises(ValueError, match=r"no column\(s\) \['x'\]"):
        drift_table(profiles, numeric_frame([1.0], name="y"))


def test_a_numeric_feature_that_arrives_as_text_is_named() -> None:
    profiles = reference_profiles(numeric_frame([1.0, 2.0]), ["x"], [])

    with pytest.raises(ValueError, match="numeric feature 'x' has type String"):
        drift_table(profiles, pl.DataFrame({"x": ["1.0"]}))


def test_a_reference_without_the_feature_is_refused() -> None:
    with pytest.raises(ValueError, match=r"reference frame has no column\(s\) \['temp'\]"):
        reference_profiles(numeric_frame([1.0]), ["temp"], [])


# ---- real flights -------------------------------------------------------------------------------


def day_features(spec: PipelineSpec, landing: Path, days: list[str]) -> pl.DataFrame:
    """The features of ``days`` as the features asset builds them from the landing files."""
    frames = []
    for day in days:
        raw = read_landing_file(
            landing / spec.source.path.format(day=day), spec.schema_, spec.source.null_values
        )
        references = {
            name: read_landing_file(landing / ref.path.format(day=day), ref.schema_, spec.source.null_values)
            for name, ref in spec.references.items()
        }
        frames.append(compute_features(spec, raw, references))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def later_landing(tmp_path_factory: pytest.TempPathFactory, flight_spec: PipelineSpec) -> Path:
    landing = tmp_path_factory.mktemp("drift_landing")
    replay(flight_spec, landing, dt.date(2013, 1, 3), 2)
    replay(flight_spec, landing, dt.date(2013, 7, 1), 2)
    return landing


def test_real_temperature_drifts_from_january_to_july_not_between_adjacent_january_days(
    flight_spec: PipelineSpec, replayed: Replayed, later_landing: Path
) -> None:
    january = day_features(flight_spec, replayed.landing, replayed.days)  # 2013-01-01 and 02
    next_days = day_features(flight_spec, later_landing, ["2013-01-03", "2013-01-04"])
    july = day_features(flight_spec, later_landing, ["2013-07-01", "2013-07-02"])
    profiles = reference_profiles(january, flight_spec.features.numeric, flight_spec.features.categorical)

    against_july = drift_table(profiles, july).filter(pl.col("feature") == "temp").row(0, named=True)
    against_next = drift_table(profiles, next_days).filter(pl.col("feature") == "temp").row(0, named=True)

    assert against_july["psi"] > 5 * flight_spec.monitoring.psi_threshold
    assert against_next["psi"] < against_july["psi"] / 2
    assert against_july["ks_statistic"] > 0.9  # July's every hour was warmer than January's
    assert against_next["ks_statistic"] < against_july["ks_statistic"] / 2
    assert against_july["top_bin"].endswith(", +inf)")  # the warm end of January's range


# ---- the picture --------------------------------------------------------------------------------


def png_size(markdown: str) -> tuple[int, int]:
    assert markdown.startswith("![feature drift](data:image/png;base64,") and markdown.endswith(")")
    payload = base64.b64decode(markdown.split("base64,", 1)[1][:-1], validate=True)
    assert payload[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", payload[16:24])  # the IHDR chunk
    return width, height


def test_drift_markdown_is_a_png_with_one_panel_per_top_feature() -> None:
    rng = np.random.default_rng(6)
    reference = pl.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500), "c": ["x", "y"] * 250})
    current = pl.DataFrame({"a": rng.normal(1, size=100), "b": rng.normal(size=100), "c": ["x"] * 100})
    profiles = reference_profiles(reference, ["a", "b"], ["c"])
    table = drift_table(profiles, current)

    one = png_size(drift_markdown(profiles, current, table, top=1))
    four = png_size(drift_markdown(profiles, current, table))

    assert four[0] > 1.5 * one[0]  # two columns of panels instead of one
    assert four[1] > 1.5 * one[1]  # two rows (three features) instead of one


def test_drift_markdown_of_an_empty_table_is_refused() -> None:
    profiles = reference_profiles(numeric_frame([1.0]), ["x"], [])
    table = drift_table(profiles, numeric_frame([1.0])).clear()

    with pytest.raises(ValueError, match="no features to plot"):
        drift_markdown(profiles, numeric_frame([1.0]), table)


def test_without_ks_the_psi_and_every_other_column_are_the_same() -> None:
    """The simulation turns the KS tests off (no decision reads them): only their columns change."""
    rng = np.random.default_rng(3)
    reference = pl.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    current = pl.DataFrame({"x": rng.normal(0.5, size=300), "c": rng.choice(["a", "b"], 300)})
    profiles = reference_profiles(reference, numeric=["x"], categorical=["c"])
    full, without = drift_table(profiles, current), drift_table(profiles, current, ks=False)
    assert full["ks_p_value"].null_count() == 1 and without["ks_p_value"].null_count() == 2
    assert without["ks_statistic"].null_count() == 2
    assert without.drop("ks_statistic", "ks_p_value").equals(full.drop("ks_statistic", "ks_p_value"))
