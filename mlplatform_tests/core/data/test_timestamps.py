"""The fast datetime conversion gives exactly what polars' own conversion gives."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from mlplatform.core.data.timestamps import UTC_MICROSECONDS, epoch_microseconds, typed_series

NEW_YORK_WINTER = dt.timezone(dt.timedelta(hours=-5))


@pytest.mark.parametrize(
    "values",
    [
        [dt.datetime(2013, 1, 1, 5, tzinfo=dt.UTC)],
        [dt.datetime(2013, 1, 1, 5, tzinfo=NEW_YORK_WINTER)],  # an offset moves the instant
        [dt.datetime(2013, 1, 1, 5)],  # naive: taken as UTC, as polars takes it
        [dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)],  # before the epoch
        [dt.datetime(2026, 11, 23, 4, 5, 6, 123_456, tzinfo=dt.UTC), None],  # microseconds, a null
        [dt.datetime(1970, 1, 1, 0, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=1, minutes=30)))],
        [dt.datetime(1, 1, 1, tzinfo=dt.UTC), dt.datetime(9999, 12, 31, 23, 59, 59, 999_999)],  # the extremes
        [],
    ],
)
def test_matches_polars_conversion(values: list[dt.datetime | None]) -> None:
    expected = pl.Series("t", values, UTC_MICROSECONDS)

    converted = typed_series("t", values, UTC_MICROSECONDS)

    assert converted.dtype == UTC_MICROSECONDS
    assert converted.to_list() == expected.to_list()


def test_offset_datetime_is_the_same_instant_in_utc() -> None:
    five_am_new_york = dt.datetime(2013, 1, 1, 5, tzinfo=NEW_YORK_WINTER)

    [micros] = epoch_microseconds([five_am_new_york])

    assert micros == epoch_microseconds([dt.datetime(2013, 1, 1, 10, tzinfo=dt.UTC)])[0]
