"""Datetimes to polars' UTC microseconds, fast.

Polars converts a timezone-aware ``datetime`` object by object through its time zone: 4 ms for a
thousand values, all of it holding the GIL, which in the prediction service stalls every request
in flight. The arithmetic below does the same in a tenth of the time, and the integers become a
``Datetime("us", "UTC")`` column with one cast.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
_MICROSECOND = dt.timedelta(microseconds=1)
UTC_MICROSECONDS = pl.Datetime("us", "UTC")


def epoch_microseconds(values: list[dt.datetime | None]) -> list[int | None]:
    """Datetimes as UTC microseconds, naive ones taken as UTC (as polars takes them). From the
    fields rather than by subtracting the epoch: a subtraction asks both operands for their offset,
    and the datetimes pydantic parses carry a time zone object that is slow to ask (1.4 ms against
    0.8 ms for a thousand)."""
    micros: list[int | None] = []
    for value in values:
        if value is None:
            micros.append(None)
            continue
        offset = value.utcoffset()
        seconds = (
            (value.toordinal() - _EPOCH_DAY) * 86_400 + value.hour * 3600 + value.minute * 60 + value.second
        )
        micros.append(
            seconds * 1_000_000 + value.microsecond - (0 if offset is None else offset // _MICROSECOND)
        )
    return micros


def typed_series(name: str, values: list, dtype: pl.DataType, strict: bool = True) -> pl.Series:
    """Python values as a series of ``dtype``; UTC datetimes by the arithmetic above. ``strict``
    as polars has it (False: a value of another type is converted when it can be)."""
    if dtype == UTC_MICROSECONDS:
        return pl.Series(name, epoch_microseconds(values), pl.Int64).cast(UTC_MICROSECONDS)
    return pl.Series(name, values, dtype, strict=strict)
