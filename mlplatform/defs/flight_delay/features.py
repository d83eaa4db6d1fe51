"""Features for "will this flight from New York arrive more than 15 minutes late?".

One polars function serves training (over a day of landing data) and the prediction service (over
request records), so the two cannot drift apart. It only sees what is known before departure: the
platform removes every ``post_event`` column (dep_delay, arr_time, air_time, ...) before calling
it. Weather is the origin airport's observation for the scheduled departure hour; at serving time
that is the latest observation the weather feed has delivered for that hour.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

# Eager or lazy: the spec declares the function lazy, so the platform hands it LazyFrames and runs
# it as one query; tests and notebooks can still call it on DataFrames.
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def build_features(flights: Frame, references: dict[str, Frame]) -> Frame:
    weather = (
        references["weather"]
        .select("origin", "time_hour", *WEATHER)
        .unique(subset=["origin", "time_hour"], keep="first", maintain_order=True)
    )
    planes = references["planes"].select("tailnum", pl.col("year").alias("plane_year"), "seats", "engines")
    sched_dep_minutes = (pl.col("sched_dep_time") // 100) * 60 + pl.col("sched_dep_time") % 100
    sched_arr_minutes = (pl.col("sched_arr_time") // 100) * 60 + pl.col("sched_arr_time") % 100
    return (
        flights.with_columns(
            date=pl.date(pl.col("year"), pl.col("month"), pl.col("day")),
        )
        .join(weather, on=["origin", "time_hour"], how="left", maintain_order="left")
        .join(planes, on="tailnum", how="left", maintain_order="left")
        .select(
            "year",
            "month",
            "day",
            "carrier",
            "flight",
            "origin",
            "time_hour",
            "dest",
            pl.concat_str("origin", pl.lit("-"), "dest").alias("route"),
            (pl.col("sched_dep_time") // 100).alias("sched_hour"),
            pl.col("date").dt.weekday().alias("day_of_week"),
            pl.col("distance"),
            ((sched_arr_minutes - sched_dep_minutes) % (24 * 60)).alias("sched_block_minutes"),
            (pl.col("year") - pl.col("plane_year")).alias("plane_age"),
            pl.col("seats"),
            pl.col("engines"),
            *WEATHER,
        )
    )
