"""Traffic routing: sticky, proportional, monotonic in the canary share."""

from __future__ import annotations

import pytest

from mlplatform.serving.routing import CHALLENGER, CHAMPION, RolloutState, Strategy, bucket, choose

IDS = [f"request-{n}" for n in range(20_000)]


def test_bucket_is_stable_and_uniform() -> None:
    assert bucket("abc") == bucket("abc")
    points = [bucket(i) for i in IDS]
    assert all(0 <= p < 1 for p in points)
    assert abs(sum(p < 0.25 for p in points) / len(points) - 0.25) < 0.01


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5])
def test_canary_share_is_respected(share: float) -> None:
    state = RolloutState("canary", 1, share)
    routed = [choose(i, state, has_challenger=True) for i in IDS]
    assert abs(routed.count(CHALLENGER) / len(IDS) - share) < 0.01


def test_raising_the_share_only_moves_callers_to_the_challenger() -> None:
    small, large = RolloutState("canary", 1, 0.05), RolloutState("canary", 2, 0.25)
    for request_id in IDS:
        if choose(request_id, small, True) == CHALLENGER:
            assert choose(request_id, large, True) == CHALLENGER


@pytest.mark.parametrize(
    ("state", "has_challenger", "target", "expected"),
    [
        (RolloutState("none"), True, None, CHAMPION),
        (RolloutState("shadow", 0, 1.0), True, None, CHAMPION),
        (RolloutState("canary", 1, 1.0), False, None, CHAMPION),
        (RolloutState("blue_green", 1, 0.0), True, None, CHAMPION),
        (RolloutState("blue_green", 1, 1.0), True, None, CHALLENGER),
        (RolloutState("ab", 1, 0.0), True, CHALLENGER, CHALLENGER),
        (RolloutState("ab", 1, 1.0), True, CHAMPION, CHAMPION),
        (RolloutState("ab", 1, 0.5), False, CHALLENGER, CHAMPION),
    ],
)
def test_choose(state: RolloutState, has_challenger: bool, target: str | None, expected: str) -> None:
    assert choose("some-request", state, has_challenger, target) == expected


@pytest.mark.parametrize("strategy", ["none", "shadow", "canary", "blue_green", "ab"])
@pytest.mark.parametrize("target", [None, CHAMPION, CHALLENGER, "unknown"])
def test_without_a_challenger_every_request_is_the_champions(strategy: Strategy, target: str | None) -> None:
    """The scorer relies on this to skip routing record by record when no challenger is loaded."""
    state = RolloutState(strategy, 1, 1.0)
    assert {choose(i, state, False, target) for i in IDS[:200]} == {CHAMPION}
