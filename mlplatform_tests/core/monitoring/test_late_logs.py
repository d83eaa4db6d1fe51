"""Which days' stored prediction logs miss files that arrived after they were built."""

from __future__ import annotations

import pytest

from mlplatform.core.monitoring.late_logs import files_digest, recent_days, stale_days

NAMES = {
    "2013-03-01": ["20261207T100000000000-1-1.parquet", "20261207T120000000000-1-5.parquet"],
    "2013-03-02": ["20261207T103000000000-1-2.parquet"],
    "2013-03-03": ["20261207T080000000000-1-0.parquet"],
}


@pytest.mark.parametrize(
    ("newest_seen", "days"),
    [
        (None, {"2013-03-01", "2013-03-02", "2013-03-03"}),  # a fresh cursor compares every day
        ("20261207T120000000000-1-5.parquet", {"2013-03-01"}),  # an hour back from the newest seen
        ("20261207T113000000000-1-4.parquet", {"2013-03-01", "2013-03-02"}),  # a late flush within it
        ("20261207T140000000000-1-9.parquet", set()),
    ],
)
def test_recent_days_have_a_file_flushed_within_the_lookback(newest_seen: str | None, days: set[str]) -> None:
    assert recent_days(NAMES, newest_seen) == days


@pytest.mark.parametrize(
    ("built", "stale"),
    [
        ({}, []),  # nothing built yet: built when the labels arrive, from every file then
        ({"2013-03-01": files_digest(NAMES["2013-03-01"])}, []),  # built from every file
        ({"2013-03-01": files_digest(NAMES["2013-03-01"][:1])}, ["2013-03-01"]),  # a file came later
        ({"2013-03-01": None, "2013-03-02": files_digest(NAMES["2013-03-02"])}, ["2013-03-01"]),  # no record
    ],
)
def test_a_built_day_is_stale_when_its_files_are_not_the_ones_it_read(
    built: dict[str, str | None], stale: list[str]
) -> None:
    found = stale_days(NAMES, ["2013-03-01", "2013-03-02"], built)
    assert list(found) == stale
    assert all(found[day] == files_digest(NAMES[day]) for day in stale)
