"""The rollout controller's judgement: advance, hold or roll back a rollout. Plain Python.

During a rollout the challenger is compared with the champion on live traffic since the current
stage began. A limit broken rolls back at once (with enough requests to measure it); the rollout
advances only when the stage has seen its minimum requests and lasted its minimum duration with
every limit kept. The limits:

- error rate and p99 latency of the challenger, against the stage's own limits;
- the spread of the challenger's scores against the champion's over the same stage: a model that
  predicts a constant is caught before a single label arrives. Only a collapse is judged, not a
  shift: on the 2013 replay a score-PSI limit against the champion rolled back 73 approved
  retrained models (PSI 1.0 to 7.1, median 3.9) because a stale champion's scores sat at another
  season's base rate, and the weekly policy ended below never retraining at all;
- the live metric of the task (binary: AUC, multiclass: accuracy, regression: R²) from the labels
  that arrived so far, against the champion's on its own traffic.

The spread is the task's (``Task.spread``): the standard deviation of probabilities or predicted
values, the entropy of the predicted classes' shares; a challenger with a small share of the
champion's has collapsed towards one answer.

Which stage limits apply: shadow has its own, each canary stage its own, a blue-green switch and an
A/B test those of the last stage. An A/B test never advances by itself: it runs until someone
promotes or rolls it back, but its limits still roll it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mlplatform.core.deployment.rollout import RegistryState
from mlplatform.core.spec import RolloutSpec, RolloutStage


@dataclass(frozen=True)
class VariantStats:
    """One variant's live figures since the stage began."""

    requests: int = 0
    errors: int = 0
    p99_ms: float | None = None
    labelled: int = 0
    live: float | None = None  # the task's live metric (higher is better) on the labelled rows

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    action: Literal["advance", "hold", "rollback"]
    reasons: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.action}: " + "; ".join(self.reasons)


def stage_limits(state: RegistryState, spec: RolloutSpec) -> RolloutStage | None:
    """The limits of the stage the registry says the rollout is in (None when none is)."""
    if not state.in_progress:
        return None
    if state.strategy == "shadow":
        return spec.shadow
    if state.strategy == "canary":
        return spec.stages[min(max(state.stage, 1), len(spec.stages)) - 1]
    return spec.stages[-1]


def _broken_limits(
    limits: RolloutStage,
    spec: RolloutSpec,
    champion: VariantStats,
    challenger: VariantStats,
    score_spread: float | None,
    metric: str,
) -> list[str]:
    broken = []
    if challenger.requests >= spec.min_requests_for_limits:
        if challenger.error_rate > limits.max_error_rate:
            broken.append(
                f"error rate {challenger.error_rate:.1%} ({challenger.errors} of {challenger.requests}) "
                f"above {limits.max_error_rate:.1%}"
            )
        if challenger.p99_ms is not None and challenger.p99_ms > limits.max_p99_ms:
            broken.append(f"p99 latency {challenger.p99_ms:.1f} ms above {limits.max_p99_ms:g} ms")
        if score_spread is not None and score_spread < spec.min_score_spread:
            broken.append(
                f"scores collapsed: their spread is {score_spread:.0%} of the champion's, below "
                f"{spec.min_score_spread:.0%}"
            )
    if (
        min(challenger.labelled, champion.labelled) >= spec.min_labelled
        and challenger.live is not None
        and champion.live is not None
        and not math.isnan(challenger.live)
        and not math.isnan(champion.live)
        and champion.live - challenger.live > spec.max_live_drop
    ):
        broken.append(
            f"live {metric} {challenger.live:.3f} below the champion's {champion.live:.3f} by more than "
            f"{spec.max_live_drop:g} ({challenger.labelled} and {champion.labelled} labelled)"
        )
    return broken


def judge(
    state: RegistryState,
    spec: RolloutSpec,
    elapsed_minutes: float,
    champion: VariantStats,
    challenger: VariantStats,
    score_spread: float | None = None,
    metric: str = "auc",
) -> Verdict:
    """What the controller does now with the rollout the registry describes."""
    limits = stage_limits(state, spec)
    if limits is None:
        return Verdict("hold", ["no rollout in progress"])
    broken = _broken_limits(limits, spec, champion, challenger, score_spread, metric)
    if broken:
        return Verdict("rollback" if spec.auto_rollback else "hold", broken)
    if state.strategy == "ab":
        return Verdict("hold", ["an A/B test runs until someone promotes or rolls it back"])
    if state.strategy == "blue_green" and state.stage == 0:
        return Verdict("advance", ["the idle colour passed its smoke test: switch"])
    waiting = []
    if challenger.requests < limits.min_requests:
        waiting.append(f"{challenger.requests} of {limits.min_requests} requests")
    if elapsed_minutes < limits.min_minutes:
        waiting.append(f"{elapsed_minutes:.1f} of {limits.min_minutes:g} minutes")
    if waiting:
        return Verdict("hold", waiting)
    return Verdict(
        "advance",
        [f"{challenger.requests} requests over {elapsed_minutes:.1f} minutes within every limit"],
    )
