"""The landing sensor's compact cursor: which files are new or changed, from a mark and a digest."""

from __future__ import annotations

import pytest

from mlplatform.core.data.landing_cursor import LandingCursor, Listing, scan

DELIVERED: Listing = {"flights/01.csv": (100, 10), "weather/01.csv": (100, 5), "flights/02.csv": (200, 12)}


def _after(files: Listing) -> LandingCursor:
    return scan(LandingCursor(), files).cursor


REPLACED = {**DELIVERED, "flights/01.csv": (300, 7)}
MOVED_IN = {**DELIVERED, "flights/00.csv": (50, 3)}
REMOVED = {"flights/01.csv": (100, 10), "weather/01.csv": (100, 5)}


@pytest.mark.parametrize(
    ("files", "candidates", "rescanned"),
    [
        (DELIVERED, (), False),  # nothing new
        ({**DELIVERED, "flights/03.csv": (300, 9)}, ("flights/03.csv",), False),  # a new day
        ({**DELIVERED, "weather/02.csv": (200, 4)}, ("weather/02.csv",), False),  # a new file at the mark
        # Below the mark the listing changed: a file replaced (its old version is gone), one moved
        # in with an old time, one removed. Every file is a candidate; the sensor keeps the unstored.
        (REPLACED, tuple(sorted(REPLACED)), True),
        (MOVED_IN, tuple(sorted(MOVED_IN)), True),
        (REMOVED, tuple(sorted(REMOVED)), True),
    ],
)
def test_scan_names_new_and_changed_files_and_rescans_when_old_ones_changed(
    files: Listing, candidates: tuple[str, ...], rescanned: bool
) -> None:
    found = scan(_after(DELIVERED), files)

    assert (found.candidates, found.rescanned) == (candidates, rescanned)
    assert found.unchanged == (files == DELIVERED)
    assert scan(found.cursor, files).unchanged  # each version of a file is a candidate once


def test_a_fresh_cursor_sees_every_file_and_the_stored_one_stays_small() -> None:
    files = {f"flights/2013-01-{d:02}.csv": (1_700_000_000_000_000_000 + d, 40_000) for d in range(1, 366)}

    found = scan(LandingCursor.decode(None), files)

    assert found.candidates == tuple(sorted(files)) and not found.rescanned
    encoded = found.cursor.encode()
    assert len(encoded) < 150  # 365 files: a mark, the files at it, a digest and a count
    assert LandingCursor.decode(encoded) == found.cursor


@pytest.mark.parametrize("stored", [None, "", '{"flights/01.csv": "100:10"}'])
def test_a_missing_or_older_cursor_starts_afresh(stored: str | None) -> None:
    assert LandingCursor.decode(stored) == LandingCursor()
