"""Ids the service gives requests that bring none: UUID-length hex, unique within a process and
across processes, and spread evenly over the canary buckets routing hashes them into."""

from __future__ import annotations

import re

from mlplatform.serving.app import RequestIds
from mlplatform.serving.routing import bucket


def test_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = RequestIds()

    issued = [ids() for _ in range(10_000)]

    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in issued)
    assert len(set(issued)) == len(issued)


def test_two_processes_worth_of_ids_do_not_collide() -> None:
    first, second = RequestIds(), RequestIds()

    assert {first() for _ in range(1000)}.isdisjoint({second() for _ in range(1000)})


def test_consecutive_ids_spread_over_the_canary_buckets() -> None:
    ids = RequestIds()

    points = [bucket(ids()) for _ in range(10_000)]

    share = sum(p < 0.05 for p in points) / len(points)  # a 5% canary
    assert 0.04 < share < 0.06
