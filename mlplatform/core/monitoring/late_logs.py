"""Late prediction-log files: the days whose stored log was built before all their files arrived.

The service writes one new file per flush and day, named after the flush time, and never rewrites
one. A day's ``prediction_log`` partition is built once its labels arrive; answers logged for that
day afterwards (a late request, a replica flushing late, a replay) land in new files that nothing
would read, and ``live_performance`` would judge the day on part of its traffic. The partition
records a digest of the files it read; a day is stale when the digest of its files now differs.
Only days with a recently flushed file are compared (file names sort by flush time), looking back
``LOOKBACK`` before the newest file seen to catch a flush that was written after a later one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping

STAMP_FORMAT = "%Y%m%dT%H%M%S%f"  # a log file's name starts with its flush time in this format
LOOKBACK = dt.timedelta(hours=1)


def files_digest(names: Iterable[str]) -> str:
    """The digest of a day's log file names, as the ``prediction_log`` partition records it."""
    return hashlib.sha1("\n".join(sorted(names)).encode()).hexdigest()[:16]


def flushed_at(name: str) -> dt.datetime:
    return dt.datetime.strptime(name.split("-", 1)[0], STAMP_FORMAT).replace(tzinfo=dt.UTC)


def recent_days(names_by_day: Mapping[str, Iterable[str]], newest_seen: str | None) -> set[str]:
    """Days with a file flushed after ``LOOKBACK`` before the newest file seen (every day at first)."""
    if newest_seen is None:
        return set(names_by_day)
    since = (flushed_at(newest_seen) - LOOKBACK).strftime(STAMP_FORMAT)
    return {day for day, names in names_by_day.items() if any(n >= since for n in names)}


def stale_days(
    names_by_day: Mapping[str, Iterable[str]], days: Iterable[str], built: Mapping[str, str | None]
) -> dict[str, str]:
    """Day -> digest of its files now, for each of ``days`` whose partition (``built``: day ->
    recorded digest) was built from other files. A day not built yet is not stale: it is built when
    its labels arrive, from every file there is then."""
    stale = {}
    for day in sorted(days):
        if day not in built:
            continue
        digest = files_digest(names_by_day[day])
        if built[day] != digest:
            stale[day] = digest
    return stale
