"""Features for "what will this booking pay per night?", from what is known when it is booked.

One polars function serves training (over a day of arrivals) and the prediction service (over
request records). The platform removes the ``post_event`` columns before calling it: the price
itself, the room the guest is finally given (``assigned_room_type``, decided at check-in) and the
changes made to the booking until arrival (``booking_changes``).

Season drives this hotel's prices (203 EUR a night in August 2017 against 53 in January), and a
training window of a few weeks sees only part of a season: ``historical_adr`` (the hotel's rate
for the same time of year in the past) and the arrival's week of the year carry it.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

PASSED_THROUGH = [
    "lead_time",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "is_repeated_guest",
    "previous_cancellations",
    "previous_bookings_not_canceled",
    "days_in_waiting_list",
    "required_car_parking_spaces",
    "total_of_special_requests",
    "near_christmas",
    "near_new_years",
    "historical_adr",
]
CATEGORIES = [
    "meal",
    "country",
    "market_segment",
    "distribution_channel",
    "reserved_room_type",
    "customer_type",
    "agent",
    "company",
]


def build_features(bookings: Frame, references: dict[str, Frame]) -> Frame:
    nights = pl.col("stays_in_weekend_nights") + pl.col("stays_in_week_nights")
    return bookings.select(
        "booking_id",
        "arrival_date",
        *CATEGORIES,
        *PASSED_THROUGH,
        nights.alias("nights"),
        # A stay of only weekend nights is a short break, priced differently from a week's holiday.
        (pl.col("stays_in_weekend_nights") / pl.max_horizontal(nights, 1)).alias("weekend_share"),
        (pl.col("children") + pl.col("babies")).alias("kids"),
        pl.col("arrival_date").dt.weekday().alias("arrival_weekday"),
        pl.col("arrival_date").dt.week().alias("arrival_week"),
    )
