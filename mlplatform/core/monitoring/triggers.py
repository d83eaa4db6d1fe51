"""When the sensors act: new landing files, drift, poor live performance. Plain Python.

The Dagster sensors (``orchestration/sensors.py``) read the instance, the registry and the landing
zone, and ask these functions what to do, so every decision is unit tested without Dagster.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def day_pattern(path: str) -> re.Pattern[str]:
    """A regex matching the spec's landing path (``flights/{day}.csv``), capturing the day."""
    before, _, after = path.partition("{day}")
    return re.compile(re.escape(before) + r"(\d{4}-\d{2}-\d{2})" + re.escape(after) + "$")


def next_day(day: str) -> str:
    """A model as of D is trained on the days before D: retraining on day D's data is as of D + 1."""
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def drifted_features(rows: Iterable[Mapping[str, Any]], threshold: float) -> dict[str, float]:
    """Feature -> PSI for every feature above the threshold, most drifted first."""
    drifted = {
        str(row["feature"]): float(row["psi"])
        for row in rows
        if row.get("psi") is not None and float(row["psi"]) > threshold
    }
    return dict(sorted(drifted.items(), key=lambda item: -item[1]))


def describe_drift(drifted: Mapping[str, float], limit: int = 5) -> str:
    """``temp=0.41,visib=0.22`` for run tags (Dagster tag values are short strings)."""
    return ",".join(f"{name}={psi:.2f}" for name, psi in list(drifted.items())[:limit])


def is_bad_day(
    auc: float | None, floor: float | None, expected: float | None, max_drop: float
) -> bool | None:
    """Whether a day's live metric (AUC here; accuracy or R² for other tasks, each higher-is-better)
    is bad: below the spec's floor (if it sets one), or more than ``max_drop`` below what the served
    model scored on its own test days (its expected figure). None when it was not measured.

    The floor alone misses a model going stale in an easy season (summer flights reach AUC 0.70,
    so a model drifting down to 0.66 is well above a 0.62 floor); the drop alone would accept a
    model that was poor from the start.
    """
    if auc is None or math.isnan(auc):
        return None
    return (floor is not None and auc < floor) or (
        expected is not None and not math.isnan(expected) and auc < expected - max_drop
    )


def consecutive_bad_days(days: Sequence[tuple[str, bool | None]]) -> list[str]:
    """The trailing run of consecutive bad days (ending with the latest), from (day, bad) in day
    order. A good day, a day that was not measured, or a gap between days ends the run: only an
    unbroken stretch of measured bad days counts."""
    run: list[str] = []
    for day, bad in reversed(days):
        if not bad:
            break
        if run and dt.date.fromisoformat(run[-1]) - dt.date.fromisoformat(day) != dt.timedelta(days=1):
            break
        run.append(day)
    return list(reversed(run))


@dataclass(frozen=True)
class RetrainRequest:
    """A retraining the triggers ask for: the as-of day and why, or why not."""

    as_of: str | None
    reason: str


def retrain_request(
    trigger: str, data_day: str, newest_as_of: str | None, cooldown_days: int
) -> RetrainRequest:
    """Retrain as of the day after ``data_day`` unless a model that recent already exists.

    ``newest_as_of`` is the as-of day of the newest registered version, approved or not: after a
    retraining (even a rejected one) the triggers wait ``cooldown_days`` days of new data before
    asking again, so persistent drift does not retrain every day against the same data.
    """
    as_of = next_day(data_day)
    if newest_as_of is not None:
        waited = (dt.date.fromisoformat(as_of) - dt.date.fromisoformat(newest_as_of)).days
        if waited <= 0:
            return RetrainRequest(None, f"{trigger}: a model as of {newest_as_of} already covers {data_day}")
        if waited < cooldown_days:
            return RetrainRequest(
                None,
                f"{trigger}: cooling down, the newest model is as of {newest_as_of} "
                f"({waited} of {cooldown_days} days ago)",
            )
    return RetrainRequest(as_of, f"{trigger} on {data_day}: retrain as of {as_of}")
