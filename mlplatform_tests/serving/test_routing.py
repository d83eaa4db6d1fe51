"""Traffic routing: sticky, proportional, monotonic in the canary share."""

from __future__ import annotations

import pytest

from mlplatform.serving.routing import CHALLENGER, CHAMPION, RolloutState, Strategy, bucket, choose, route

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
@pytest.mark.parametrize("has_challenger", [True, False])
def test_route_is_choose_for_every_record_of_a_batch(strategy: Strategy, has_challenger: bool) -> None:
    """Without a challenger ``route`` answers without hashing: it must still be what ``choose`` says."""
    state = RolloutState(strategy, 1, 0.5)
    targets = [None, CHAMPION, CHALLENGER, "unknown"]
    ids_per_request = [IDS[n * 50 : (n + 1) * 50] for n in range(len(targets))]

    routed = route(ids_per_request, targets, state, has_challenger)

    assert routed == [
        choose(i, state, has_challenger, target)
        for ids, target in zip(ids_per_request, targets, strict=True)
        for i in ids
    ]
    if not has_challenger:
        assert set(routed) == {CHAMPION}
