"""The rollout controller's judgement and the stage statistics it is given, without Dagster."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from mlplatform.core.deployment.rollout import RegistryState
from mlplatform.core.deployment.rollout_control import VariantStats, judge, stage_limits
from mlplatform.core.monitoring.live import stage_statistics
from mlplatform.core.spec import RolloutSpec, RolloutStage
from mlplatform.core.task import Task

SPEC = RolloutSpec(
    strategy="canary",
    stages=[
        RolloutStage(traffic=0.1, min_requests=100, min_minutes=5, max_error_rate=0.01, max_p99_ms=50),
        RolloutStage(traffic=1.0, min_requests=300, min_minutes=10, max_error_rate=0.02, max_p99_ms=80),
    ],
    shadow=RolloutStage(traffic=1.0, min_requests=50, min_minutes=1, max_p99_ms=40),
    min_score_spread=0.25,
    max_live_drop=0.03,
    min_labelled=200,
    min_requests_for_limits=20,
)
ALIASES = {"champion": "1", "challenger": "2"}


def _state(strategy: str, stage: int, aliases: dict[str, str] = ALIASES) -> RegistryState:
    return RegistryState(aliases, {"rollout.strategy": strategy, "rollout.stage": str(stage)})


HEALTHY = VariantStats(requests=150, errors=0, p99_ms=12.0, labelled=0, live=None)
CHAMPION = VariantStats(requests=1000, errors=0, p99_ms=10.0, labelled=500, live=0.70)
LABELLED_BAD = VariantStats(requests=150, p99_ms=12.0, labelled=300, live=0.62)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (_state("shadow", 0), SPEC.shadow),
        (_state("canary", 1), SPEC.stages[0]),
        (_state("canary", 2), SPEC.stages[1]),
        (_state("blue_green", 1), SPEC.stages[-1]),
        (_state("ab", 1), SPEC.stages[-1]),
        (_state("none", 0), None),
        (_state("canary", 1, {"champion": "1"}), None),  # no challenger: nothing in progress
    ],
)
def test_stage_limits_follow_the_registry(state: RegistryState, expected: RolloutStage | None) -> None:
    assert stage_limits(state, SPEC) == expected


@pytest.mark.parametrize(
    ("challenger", "minutes", "spread", "action", "reason"),
    [
        (HEALTHY, 6.0, 0.9, "advance", "150 requests over 6.0 minutes"),
        (VariantStats(requests=80, p99_ms=12.0), 6.0, 0.9, "hold", "80 of 100 requests"),
        (HEALTHY, 2.0, 0.9, "hold", "2.0 of 5 minutes"),
        (VariantStats(requests=150, errors=3, p99_ms=12.0), 6.0, 0.9, "rollback", "error rate 2.0%"),
        (VariantStats(requests=150, p99_ms=75.0), 6.0, 0.9, "rollback", "p99 latency 75.0 ms above 50 ms"),
        (HEALTHY, 6.0, 0.0, "rollback", "scores collapsed: their spread is 0% of the champion's"),
        (HEALTHY, 6.0, 2.5, "advance", "within"),  # wider than the champion's is no collapse
        (LABELLED_BAD, 6.0, 0.9, "rollback", "live auc 0.620"),
        (VariantStats(requests=150, p99_ms=12.0, labelled=300, live=0.68), 6.0, 0.9, "advance", "within"),
        # Too few labels to compare AUC, too few requests to judge the error rate: neither rolls back.
        (VariantStats(requests=150, p99_ms=12.0, labelled=50, live=0.5), 6.0, 0.9, "advance", "within"),
        (VariantStats(requests=10, errors=5, p99_ms=12.0), 6.0, 0.0, "hold", "10 of 100 requests"),
    ],
)
def test_canary_stage_judgement(
    challenger: VariantStats, minutes: float, spread: float, action: str, reason: str
) -> None:
    verdict = judge(_state("canary", 1), SPEC, minutes, CHAMPION, challenger, spread)
    assert verdict.action == action
    assert reason in verdict.summary


def test_a_broken_limit_only_holds_when_auto_rollback_is_off() -> None:
    spec = SPEC.model_copy(update={"auto_rollback": False})
    broken = VariantStats(requests=150, errors=30, p99_ms=12.0)
    assert judge(_state("canary", 1), spec, 6.0, CHAMPION, broken).action == "hold"


def test_blue_green_switches_at_once_and_promotes_after_the_last_stage_minimums() -> None:
    assert judge(_state("blue_green", 0), SPEC, 0.0, CHAMPION, VariantStats()).action == "advance"
    served = VariantStats(requests=350, p99_ms=20.0)
    assert judge(_state("blue_green", 1), SPEC, 11.0, CHAMPION, served).action == "advance"
    assert judge(_state("blue_green", 1), SPEC, 3.0, CHAMPION, served).action == "hold"


def test_an_ab_test_never_advances_by_itself_but_rolls_back_on_a_broken_limit() -> None:
    assert (
        judge(_state("ab", 1), SPEC, 600.0, CHAMPION, VariantStats(requests=5000, p99_ms=9.0)).action
        == "hold"
    )
    failing = VariantStats(requests=5000, errors=500, p99_ms=9.0)
    assert judge(_state("ab", 1), SPEC, 600.0, CHAMPION, failing).action == "rollback"


def test_without_a_rollout_the_controller_holds() -> None:
    assert judge(_state("none", 0), SPEC, 100.0, CHAMPION, HEALTHY).action == "hold"


def _log(
    rng: np.random.Generator, variant: str, version: str, scores: np.ndarray, start: int
) -> pl.DataFrame:
    n = len(scores)
    return pl.DataFrame(
        {
            "request_id": [f"{variant}-{i}" for i in range(n)],
            "time": [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * n,
            "event_day": ["2013-03-01"] * n,
            "model_version": [version] * n,
            "variant": [variant] * n,
            "inputs": [json.dumps({"flight": start + i}) for i in range(n)],
            "prediction": scores,
            "latency_ms": rng.uniform(1, 5, n),
        }
    )


def test_stage_statistics_measure_each_variant_and_catch_a_constant_model() -> None:
    rng = np.random.default_rng(1)
    labels = pl.DataFrame({"flight": list(range(2000)), "delayed": rng.integers(0, 2, 2000)})
    truth = labels["delayed"].to_numpy()
    champion_scores = np.clip(truth[:1000] * 0.3 + rng.uniform(0, 0.7, 1000), 0, 1)
    healthy = np.clip(truth[1000:1400] * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    champion_log = _log(rng, "champion", "1", champion_scores, 0)
    log = pl.concat([champion_log, _log(rng, "challenger", "2", healthy, 1000)])

    champion, challenger, spread = stage_statistics(log, "1", "2", labels, ["flight"], "delayed")
    assert (champion.requests, challenger.requests) == (1000, 400)
    assert (champion.labelled, challenger.labelled) == (1000, 400)
    assert champion.live is not None and champion.live > 0.75
    assert spread == pytest.approx(1.0, abs=0.1)

    # Scores of another season (all shifted up) are no collapse; a constant is.
    shifted = pl.concat([champion_log, _log(rng, "shadow", "2", np.clip(healthy + 0.3, 0, 1), 1000)])
    assert stage_statistics(shifted, "1", "2", labels, ["flight"], "delayed")[2] > SPEC.min_score_spread
    constant = pl.concat([champion_log, _log(rng, "shadow", "2", np.full(400, 0.31), 1000)])
    _, shadow, constant_spread = stage_statistics(constant, "1", "2", labels, ["flight"], "delayed")
    assert shadow.requests == 400 and shadow.live == pytest.approx(0.5)
    assert constant_spread == 0.0
    verdict = judge(_state("shadow", 0), SPEC, 2.0, champion, shadow, constant_spread)
    assert verdict.action == "rollback" and "scores collapsed" in verdict.summary


def test_stage_statistics_count_errors_from_the_status_column() -> None:
    rng = np.random.default_rng(2)
    log = _log(rng, "challenger", "2", rng.uniform(0, 1, 100), 0).with_columns(
        status=pl.Series(["error"] * 5 + ["ok"] * 95)
    )
    _, challenger, spread = stage_statistics(log, "1", "2", None, ["flight"], "delayed")
    assert (challenger.requests, challenger.errors, challenger.labelled) == (100, 5, 0)
    assert spread is None  # no champion traffic to compare with


@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_stage_statistics_judge_each_task_by_its_own_spread_and_live_metric(kind: str) -> None:
    """A multiclass challenger that answers one class, or a regression challenger that answers one
    value, has collapsed; a healthy one compares by accuracy or R² on the labels that arrived."""
    rng = np.random.default_rng(4)
    task = Task("multiclass", ("a", "b", "c")) if kind == "multiclass" else Task("regression")

    def right(y: np.ndarray) -> np.ndarray:
        """Answers a good model gives: 80% of classes right (the rest at random), or values near."""
        if kind == "multiclass":
            return np.where(rng.uniform(size=len(y)) < 0.8, y, rng.integers(0, 3, len(y)))
        return y + rng.normal(0, 3, len(y))

    if kind == "multiclass":
        truth, collapsed = rng.integers(0, 3, 1400).astype(float), np.full(400, 1.0)
    else:
        truth, collapsed = rng.normal(30, 10, 1400), np.full(400, 30.0)
    labels = pl.DataFrame({"flight": list(range(1400)), "target": truth})
    champion_log = _log(rng, "champion", "1", right(truth[:1000]), 0)
    healthy = pl.concat([champion_log, _log(rng, "challenger", "2", right(truth[1000:]), 1000)])
    constant = pl.concat([champion_log, _log(rng, "challenger", "2", collapsed, 1000)])

    champion, challenger, spread = stage_statistics(healthy, "1", "2", labels, ["flight"], "target", task)
    _, stuck, collapsed_spread = stage_statistics(constant, "1", "2", labels, ["flight"], "target", task)

    expected = 0.8 + 0.2 / 3 if kind == "multiclass" else 1 - 9 / 100
    assert champion.live == pytest.approx(expected, abs=0.05)
    assert challenger.live == pytest.approx(expected, abs=0.07)
    assert spread == pytest.approx(1.0, abs=0.15) and collapsed_spread == 0.0
    assert (
        judge(_state("canary", 1), SPEC, 6.0, champion, challenger, spread, task.live_metric).action
        != "rollback"
    )
    verdict = judge(_state("canary", 1), SPEC, 6.0, champion, stuck, collapsed_spread, task.live_metric)
    assert verdict.action == "rollback" and "scores collapsed" in verdict.summary
    # Its live metric is far below the champion's too, and named as the task's.
    assert f"live {task.live_metric} " in verdict.summary
