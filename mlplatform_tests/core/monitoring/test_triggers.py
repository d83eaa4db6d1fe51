"""The sensors' decisions, without Dagster: landing files, drift, consecutive bad days, cooldown."""

from __future__ import annotations

import pytest

from mlplatform.core.monitoring.triggers import (
    consecutive_bad_days,
    day_pattern,
    describe_drift,
    drifted_features,
    is_bad_day,
    next_day,
    retrain_request,
)


@pytest.mark.parametrize(
    ("pattern", "path", "day"),
    [
        ("flights/{day}.csv", "flights/2013-03-01.csv", "2013-03-01"),
        ("weather/{day}.csv", "weather/2013-12-31.csv", "2013-12-31"),
        ("readings/{day}.parquet", "readings/2024-03-01.parquet", "2024-03-01"),
        ("flights/{day}.csv", "flights/2013-03-01.csv.bak", None),
        ("flights/{day}.csv", "flights/.incoming-x1y2", None),
        ("flights/{day}.csv", "weather/2013-03-01.csv", None),
        ("flights/{day}.csv", "flights/latest.csv", None),
    ],
)
def test_day_pattern_captures_the_day_of_a_landing_file(pattern: str, path: str, day: str | None) -> None:
    match = day_pattern(pattern).search(path)
    assert (match.group(1) if match else None) == day


@pytest.mark.parametrize(("day", "expected"), [("2013-02-28", "2013-03-01"), ("2012-12-31", "2013-01-01")])
def test_retraining_on_a_days_data_is_as_of_the_next_day(day: str, expected: str) -> None:
    assert next_day(day) == expected


def test_drifted_features_are_those_above_the_threshold_most_drifted_first() -> None:
    rows = [
        {"feature": "temp", "psi": 0.41},
        {"feature": "distance", "psi": 0.05},
        {"feature": "visib", "psi": 0.9},
        {"feature": "carrier", "psi": None},
        {"feature": "precip", "psi": 0.2},
    ]
    drifted = drifted_features(rows, 0.2)
    assert list(drifted) == ["visib", "temp"]
    assert describe_drift(drifted) == "visib=0.90,temp=0.41"


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ([("2013-03-01", False), ("2013-03-02", True), ("2013-03-03", True)], ["2013-03-02", "2013-03-03"]),
        ([("2013-03-01", True), ("2013-03-02", False)], []),
        ([("2013-03-01", True), ("2013-03-02", None), ("2013-03-03", True)], ["2013-03-03"]),
        ([("2013-03-01", True), ("2013-03-03", True)], ["2013-03-03"]),  # a gap ends the run
        ([], []),
    ],
)
def test_consecutive_bad_days(days: list, expected: list[str]) -> None:
    assert consecutive_bad_days(days) == expected


@pytest.mark.parametrize(
    ("auc", "expected_auc", "bad"),
    [
        (0.70, 0.72, False),  # within the allowed drop of what it scored offline
        (0.66, 0.72, True),  # above the floor, but 0.06 below its own test AUC
        (0.61, None, True),  # below the floor; nothing known offline
        (0.61, 0.60, True),  # below the floor even if it never did better
        (0.64, 0.66, False),
        (float("nan"), 0.7, None),  # one class only: not measured
        (None, 0.7, None),
        (0.5, float("nan"), True),
    ],
)
def test_a_bad_day_is_below_the_floor_or_well_below_the_models_own_test_auc(
    auc: float | None, expected_auc: float | None, bad: bool | None
) -> None:
    assert is_bad_day(auc, floor=0.62, expected=expected_auc, max_drop=0.03) is bad


@pytest.mark.parametrize(
    ("newest", "as_of"),
    [
        (None, "2013-03-11"),  # nothing trained yet
        ("2013-03-01", "2013-03-11"),  # 10 days since the newest model: due
        ("2013-03-04", "2013-03-11"),  # exactly the cooldown: due
        ("2013-03-05", None),  # 6 of 7 days: cooling down
        ("2013-03-11", None),  # the newest model already covers the day
        ("2013-04-01", None),
    ],
)
def test_retrain_request_respects_the_cooldown(newest: str | None, as_of: str | None) -> None:
    decision = retrain_request("drift", "2013-03-10", newest, cooldown_days=7)
    assert decision.as_of == as_of
    assert decision.reason.startswith("drift")
