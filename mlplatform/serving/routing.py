"""Which variant answers a request: plain Python, no web framework.

A request id is hashed to a stable point in [0, 1): the same caller always lands on the same side
of a canary or A/B split, and raising the canary share only moves callers from champion to
challenger, never back. Shadow never answers (the challenger is scored off the response path);
blue-green answers with one colour at a time; an ``X-Target-Variant`` header picks a variant
explicitly, as SageMaker's target variant does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["none", "shadow", "canary", "blue_green", "ab"]
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class RolloutState:
    """What the registry's tags say about the rollout in progress."""

    strategy: Strategy = "none"
    stage: int = 0
    traffic: float = 0.0  # the challenger's share for canary and A/B; 1.0 = blue-green switched

    @property
    def shadows(self) -> bool:
        return self.strategy == "shadow"


def bucket(request_id: str) -> float:
    """A stable point in [0, 1) for a request id (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(request_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(request_id: str, state: RolloutState, has_challenger: bool, target: str | None = None) -> str:
    """The variant that answers. ``target`` (the X-Target-Variant header) wins when it exists."""
    if target in (CHAMPION, CHALLENGER):
        return CHALLENGER if target == CHALLENGER and has_challenger else CHAMPION
    if not has_challenger or state.strategy in ("none", "shadow"):
        return CHAMPION
    if state.strategy == "blue_green":
        return CHALLENGER if state.traffic >= 1.0 else CHAMPION
    return CHALLENGER if bucket(request_id) < state.traffic else CHAMPION


def route(
    ids_per_request: list[list[str]], targets: list[str | None], state: RolloutState, has_challenger: bool
) -> list[str]:
    """``choose`` for every record of a batch, requests in order, each with its request's target.
    Without a challenger every record is the champion's, so none is hashed."""
    if not has_challenger:
        return [CHAMPION] * sum(len(ids) for ids in ids_per_request)
    return [
        choose(i, state, True, target)
        for ids, target in zip(ids_per_request, targets, strict=True)
        for i in ids
    ]
