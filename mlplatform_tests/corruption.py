"""Corrupting real nycflights13 landing files, each way with the outcome the platform must give.

Every case takes the real file a day's delivery holds (flights or weather, as text, exactly as
``mlplatform replay`` wrote it) and returns the bytes an upstream would send instead. Unless the
case is about completeness, the upstream's done marker is rewritten to the new row count: a feed
that sends bad data still says how much it sent, so the case meets the gate it is about and not
the marker check. ``EXPECTED`` is the outcome written down before running: ``blocked`` by a named
gate of a named table with a fragment of its message, or ``stored``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

NEW_DAY = "2013-01-04"  # not stored before the case runs; three stored days precede it
STORED_DAY = "2013-01-03"  # already in the warehouse: a case on it is a re-delivery
OTHER_DAY = "2013-01-02"


@dataclass(frozen=True)
class Case:
    table: str  # "flights" or "weather": the landing folder
    corrupt: Callable[[pl.DataFrame, Path], bytes]  # the day's text frame, the landing folder -> bytes
    outcome: str  # "blocked" or "stored"
    asset: str = ""  # the asset whose gate closes
    gate: str = ""
    says: str = ""  # a fragment of the failure the run reports
    day: str = NEW_DAY
    marker: str = "rewrite"  # "rewrite" to the new count, "keep" the old one, "delete"


def csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv(null_value="NA").encode()


def at(frame: pl.DataFrame, rows: int, column: str, value: str) -> pl.DataFrame:
    """``value`` in ``column`` for the first ``rows`` rows."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) < rows).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    )


def _utc(frame: pl.DataFrame) -> pl.Expr:
    return pl.col("time_hour").str.to_datetime(time_unit="us", time_zone="UTC")


def _us_format(frame: pl.DataFrame, _: Path) -> bytes:
    # 02/03-style dates: ambiguous, so refused unless the column declares the format.
    local = _utc(frame).dt.convert_time_zone("America/New_York")
    return csv(frame.with_columns(local.dt.strftime("%m/%d/%Y %H:%M").alias("time_hour")))


def _local_labelled_utc(frame: pl.DataFrame, _: Path) -> bytes:
    # The local time written with a Z: every instant 5 hours early.
    local = _utc(frame).dt.convert_time_zone("America/New_York")
    return csv(frame.with_columns(local.dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("time_hour")))


def _no_offset(frame: pl.DataFrame, _: Path) -> bytes:
    return csv(frame.with_columns(pl.col("time_hour").str.replace("Z", "")))


def _local_offset(frame: pl.DataFrame, _: Path) -> bytes:
    # The same instants written with New York's own offset: nothing changes once typed.
    local = _utc(frame).dt.convert_time_zone("America/New_York")
    return csv(frame.with_columns(local.dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias("time_hour")))


def _next_day_instant(frame: pl.DataFrame, _: Path) -> bytes:
    shifted = (_utc(frame) + pl.duration(days=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return csv(
        frame.with_columns(
            pl.when(pl.int_range(pl.len()) < 3).then(shifted).otherwise("time_hour").alias("time_hour")
        )
    )


def _rows_of(day: str) -> Callable[[pl.DataFrame, Path], bytes]:
    def corrupt(frame: pl.DataFrame, landing: Path) -> bytes:
        other = pl.read_csv(landing / "flights" / f"{day}.csv", infer_schema=False)
        return csv(pl.concat([frame, other.head(5)]))

    return corrupt


def _weather_repeated(frame: pl.DataFrame, _: Path) -> bytes:
    return csv(pl.concat([frame, frame.head(24).with_columns(pl.lit("120").alias("temp"))]))


def _value(column: str, value: str, rows: int = 3) -> Callable[[pl.DataFrame, Path], bytes]:
    return lambda frame, _: csv(at(frame, rows, column, value))


def _quoted_empty_dest(frame: pl.DataFrame, _: Path) -> bytes:
    # polars writes an empty string as "", which a CSV reader keeps as a value, not a null.
    return csv(at(frame, 2, "dest", ""))


def _two_bad_columns(frame: pl.DataFrame, _: Path) -> bytes:
    return csv(at(at(frame, 2, "sched_dep_time", "soon"), 4, "distance", "n/a?"))


def _not_utf8(frame: pl.DataFrame, _: Path) -> bytes:
    text = csv(frame)
    cut = text.index(b"\n", len(text) // 2) + 1
    return text[:cut] + b"\xff\xfe" + text[cut:]


def _ragged(frame: pl.DataFrame, _: Path) -> bytes:
    lines = csv(frame).split(b"\n")
    lines[10] += b",extra"
    return b"\n".join(lines)


def _cut(share: float) -> Callable[[pl.DataFrame, Path], bytes]:
    return lambda frame, _: csv(frame.head(int(frame.height * share)))


def _spike(frame: pl.DataFrame, _: Path) -> bytes:
    # 100 copies, each with its own flight numbers, so only the volume is wrong.
    copies = [
        frame.with_columns((pl.col("flight").cast(pl.Int64) + 10_000 * n).cast(pl.String)) for n in range(100)
    ]
    return csv(pl.concat(copies))


def _crlf(frame: pl.DataFrame, _: Path) -> bytes:
    return csv(frame).replace(b"\n", b"\r\n")


CASES: dict[str, Case] = {
    "time_hour as 02/03/2013 05:00": Case("flights", _us_format, "blocked", "raw", "contract", "not an ISO 8601 datetime"),
    "local time labelled UTC (Z)": Case("flights", _local_labelled_utc, "blocked", "raw", "contract", "= local hour of time_hour"),
    "time_hour without offset": Case("flights", _no_offset, "blocked", "raw", "contract", "with its UTC offset"),
    "time_hour a day later": Case("flights", _next_day_instant, "blocked", "raw", "contract", "= local day of time_hour"),
    "rows of another day": Case("flights", _rows_of(OTHER_DAY), "blocked", "raw", "contract", "local date of time_hour in America/New_York = 2013-01-04"),
    "weather hours repeated, temp 120": Case("weather", _weather_repeated, "blocked", "weather", "primary_key", "appear more than once"),
    "duplicated flights": Case("flights", lambda f, _: csv(pl.concat([f, f.head(5)])), "blocked", "raw", "primary_key", "appear more than once"),
    "dep_delay inf": Case("flights", _value("dep_delay", "inf"), "blocked", "raw", "contract", "'dep_delay' (3)"),
    "air_time inf": Case("flights", _value("air_time", "inf"), "blocked", "raw", "contract", "'air_time' (3)"),
    "arr_delay NaN": Case("flights", _value("arr_delay", "NaN", 1), "blocked", "raw", "contract", "'arr_delay' (1)"),
    "precip NaN": Case("weather", _value("precip", "nan"), "blocked", "weather", "contract", "'precip' (3)"),
    "visib inf": Case("weather", _value("visib", "inf"), "blocked", "weather", "contract", "'visib' (3)"),
    "dest empty string": Case("flights", _quoted_empty_dest, "blocked", "raw", "contract", "'dest' (2)"),
    "extra column": Case("flights", lambda f, _: csv(f.with_columns(pl.lit("x").alias("gate"))), "blocked", "raw", "contract", "not in the schema (extra_columns: refuse)"),
    "missing column": Case("flights", lambda f, _: csv(f.drop("carrier")), "blocked", "raw", "contract", "column 'carrier': missing"),
    "renamed column": Case("flights", lambda f, _: csv(f.rename({"dest": "destination"})), "blocked", "raw", "contract", "column 'destination'"),
    "two badly typed columns": Case("flights", _two_bad_columns, "blocked", "raw", "contract", "column 'distance' (4 value(s), row(s) 1, 2, 3, 4): not of type float"),
    "invalid UTF-8": Case("flights", _not_utf8, "blocked", "raw", "contract", "not UTF-8 at byte"),
    "ragged row": Case("flights", _ragged, "blocked", "raw", "contract", "line 11 has 20 field(s), the header 19"),
    "cut to 55%, marker kept": Case("flights", _cut(0.55), "blocked", "raw", "volume", "the done marker says", marker="keep"),
    "cut to 55%, no marker": Case("weather", _cut(0.55), "blocked", "weather", "volume", "no done marker", marker="delete"),
    "100x spike": Case("flights", _spike, "blocked", "raw", "volume", "x the median"),
    "10x drop": Case("flights", _cut(0.1), "blocked", "raw", "volume", "x the median"),
    "re-delivery shrinks a stored day": Case("flights", _cut(0.4), "blocked", "raw", "volume", "would replace the stored", day=STORED_DAY),
    "re-delivery doubles a stored weather day": Case("weather", lambda f, _: csv(pl.concat([f, f.with_columns(pl.col("time_hour").str.replace(":00:00Z", ":30:00Z"))])), "blocked", "weather", "volume", "would replace the stored", day=STORED_DAY),
    "empty file": Case("flights", lambda f, _: b"", "blocked", "raw", "contract", "file is empty"),
    "header only": Case("flights", lambda f, _: csv(f.clear()), "blocked", "raw", "volume", "no rows"),
    "distance out of range": Case("flights", _value("distance", "99999"), "blocked", "raw", "contract", "less_than_or_equal_to(6000.0)"),
    "carrier not allowed": Case("flights", _value("carrier", "ZZ"), "blocked", "raw", "contract", "isin("),
    "tailnum all NA": Case("flights", lambda f, _: csv(f.with_columns(pl.lit(None, pl.String).alias("tailnum"))), "blocked", "raw", "completeness", "'tailnum' is 100.0% null"),
    "month 13": Case("flights", _value("month", "13", 2), "blocked", "raw", "contract", "less_than_or_equal_to(12.0)"),
    "hour off by one": Case("flights", lambda f, _: csv(f.with_columns((pl.col("hour").cast(pl.Int64) + 1).clip(0, 23).cast(pl.String))), "blocked", "raw", "contract", "= local hour of time_hour"),
    "negative air_time": Case("flights", _value("air_time", "-5"), "blocked", "raw", "contract", "greater_than_or_equal_to(0.0)"),
    "identical re-delivery": Case("flights", lambda f, _: csv(f), "stored", day=STORED_DAY),
    "columns reordered": Case("flights", lambda f, _: csv(f.select(reversed(f.columns))), "stored"),
    "CRLF line endings": Case("weather", _crlf, "stored"),
    "time_hour with New York offsets": Case("flights", _local_offset, "stored", day=STORED_DAY),
}  # fmt: skip


def warehouse_hashes(root: Path) -> dict[str, str]:
    """Every file under the warehouse and the SHA-256 of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def deliver(case: Case, landing: Path) -> None:
    """Replace the case day's landing file (and its done marker) with the corrupted delivery."""
    path = landing / case.table / f"{case.day}.csv"
    payload = case.corrupt(pl.read_csv(path, infer_schema=False), landing)
    path.write_bytes(payload)
    marker = path.with_name(path.name + ".done")
    if case.marker == "delete":
        marker.unlink()
    elif case.marker == "rewrite":
        rows = pl.read_csv(io.BytesIO(payload), infer_schema=False).height if _parses(payload) else 0
        marker.write_text(f"{rows}\n")


def _parses(payload: bytes) -> bool:
    try:
        pl.read_csv(io.BytesIO(payload), infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError):
        return False
    return bool(payload)
