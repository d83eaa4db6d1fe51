"""Splitting a run of consecutive days around days that cannot be ingested.

A single-run backfill covers one contiguous partition range, so once a run names the days its gates
blocked, the rest is ingested as the stretches between them, in order (an earlier stretch is stored
before a later one's volume gate looks back at it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def stretches_around(days: Sequence[str], excluded: Collection[str]) -> list[list[str]]:
    """The maximal runs of consecutive entries of ``days`` that hold none of ``excluded``."""
    stretches: list[list[str]] = [[]]
    for day in days:
        if day in excluded:
            stretches.append([])
        else:
            stretches[-1].append(day)
    return [s for s in stretches if s]
