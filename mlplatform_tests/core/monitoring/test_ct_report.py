"""The continuous-training report: targets judged on figures, the rolling mean, the table and plot."""

from __future__ import annotations

import math

import pytest

from mlplatform.core.monitoring.ct_report import (
    PolicyResult,
    live_plot_png,
    report_markdown,
    rolling_mean,
    target_checks,
)

DAYS = [f"2013-03-{d:02d}" for d in range(1, 11)]


def _result(policy: str, auc: float, retrainings: int) -> PolicyResult:
    return PolicyResult(policy, list(DAYS), [auc] * len(DAYS), [900] * len(DAYS), retrainings=retrainings)


@pytest.mark.parametrize(
    ("triggered_auc", "triggered_retrains", "met"),
    [
        (0.700, 20, [True, True, True, True]),
        (0.694, 20, [False, True, True, True]),  # more than 0.005 below daily
        (0.700, 90, [True, False, True, True]),  # more than a quarter of daily's retrainings
        (0.680, 20, [False, True, False, False]),  # no better than weekly or static
    ],
)
def test_targets_compare_triggered_with_the_other_policies(
    triggered_auc: float, triggered_retrains: int, met: list[bool]
) -> None:
    results = {
        "static": _result("static", 0.680, 0),
        "weekly": _result("weekly", 0.690, 47),
        "daily": _result("daily", 0.7005, 330),
        "triggered": _result("triggered", triggered_auc, triggered_retrains),
    }
    assert [c.met for c in target_checks(results)] == met


def test_targets_need_all_four_policies() -> None:
    assert target_checks({"static": _result("static", 0.7, 0)}) == []


def test_mean_live_metric_skips_days_without_labels() -> None:
    result = PolicyResult("static", ["a", "b", "c"], [0.6, math.nan, 0.8], [1, 0, 1])
    assert result.mean_live == pytest.approx(0.7)
    assert math.isnan(PolicyResult("static", ["a"], [math.nan], [0]).mean_live)


def test_the_median_day_is_reported_beside_the_mean() -> None:
    """A day of similar room rates gives an R² of -20 over 36 bookings: the mean follows that day,
    the median does not."""
    result = PolicyResult(
        "daily", ["a", "b", "c", "d"], [0.8, -20.0, 0.7, math.nan], [36, 36, 36, 0], metric="r2"
    )
    assert result.mean_live == pytest.approx(-6.1666667)
    assert result.median_live == pytest.approx(0.7)
    assert "| daily | 4 | -6.1667 | 0.7000 | 0 |" in report_markdown({"daily": result}, "CT")


def test_rolling_mean_uses_the_last_week_and_skips_gaps() -> None:
    values = [1.0, math.nan, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0]
    rolled = rolling_mean(values, window=3)
    assert rolled[:4] == [1.0, 1.0, 2.0, 4.0]
    assert rolled[-1] == pytest.approx(13.0)


def test_report_has_the_table_the_targets_and_the_plot() -> None:
    results = {
        p: _result(p, 0.69, n) for p, n in (("static", 0), ("weekly", 2), ("daily", 10), ("triggered", 2))
    }
    text = report_markdown(results, "CT policies", ["note one"])
    assert "| daily | 10 | 0.6900 | 0.6900 | 10 |" in text
    assert "| triggered / daily retrainings | 2 / 10 = 0.20 | <= 0.25 | yes |" in text
    assert "![live auc per day](live_metric.png)" in text and "- note one" in text
    round_trip = PolicyResult.from_dict(results["daily"].to_dict())
    assert round_trip == results["daily"]
    assert live_plot_png(results).startswith(b"\x89PNG")


def test_the_report_names_the_task_live_metric() -> None:
    results = {
        p: PolicyResult(p, list(DAYS), [0.41] * len(DAYS), [900] * len(DAYS), retrainings=n, metric="r2")
        for p, n in (("static", 0), ("weekly", 2), ("daily", 10), ("triggered", 2))
    }
    text = report_markdown(results, "CT policies")
    assert "| policy | days | mean live r2 |" in text
    assert "| triggered vs daily mean live r2 | -0.0000 | >= -0.005 | yes |" in text
    assert "![live r2 per day](live_metric.png)" in text
