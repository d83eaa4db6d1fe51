"""The online feature path on small tables the tests write: filtered references, reloads, event days."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
import pytest

from mlplatform.core.data.warehouse import ParquetWarehouse
from mlplatform.core.features.compute import compute_features
from mlplatform.core.pipelines import load_spec
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.table_spec import POLARS_TYPES, TableSchema
from mlplatform.serving import online as online_module
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.schema import RecordValidator

DAY, NEXT_DAY = "2013-01-20", "2013-01-21"


@pytest.fixture
def spec() -> PipelineSpec:
    return load_spec("flight_delay")


def _frame(schema: TableSchema, rows: list[dict]) -> pl.DataFrame:
    """Rows with every column of the schema (missing ones null), typed as the warehouse stores them."""
    types = {name: POLARS_TYPES[column.type] for name, column in schema.columns.items()}
    return pl.DataFrame([{name: row.get(name) for name in types} for row in rows], schema=types)


def _hour(hour: int, day: int = 20) -> dt.datetime:
    return dt.datetime(2013, 1, day, hour, tzinfo=dt.UTC)


def _weather(spec: PipelineSpec, temp_at_ten: float) -> pl.DataFrame:
    return _frame(
        spec.references["weather"].schema_,
        [
            {"origin": "JFK", "year": 2013, "month": 1, "day": 20, "hour": 10, "temp": temp_at_ten,
             "time_hour": _hour(10)},
            # a second observation of the same hour: the feature function keeps the first
            {"origin": "JFK", "year": 2013, "month": 1, "day": 20, "hour": 10, "temp": -5.0, "time_hour": _hour(10)},
            {"origin": "EWR", "year": 2013, "month": 1, "day": 20, "hour": 10, "temp": 12.0, "time_hour": _hour(10)},
            {"origin": "JFK", "year": 2013, "month": 1, "day": 20, "hour": 11, "temp": 31.0, "time_hour": _hour(11)},
        ],
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path, spec: PipelineSpec) -> ParquetWarehouse:
    warehouse = ParquetWarehouse(tmp_path / "warehouse")
    refs = spec.references
    warehouse.write(spec.name, "weather", _weather(spec, 30.0), DAY)  # no weather for NEXT_DAY yet
    planes = [{"tailnum": "N1", "year": 2000, "seats": 150, "engines": 2},
              {"tailnum": "N2", "year": 2010, "seats": 50, "engines": 2}]  # fmt: skip
    warehouse.write(spec.name, "planes", _frame(refs["planes"].schema_, planes))
    airports = [{"faa": "FLL", "name": "Fort Lauderdale", "lat": 26.1, "lon": -80.2, "alt": 9.0}]
    warehouse.write(spec.name, "airports", _frame(refs["airports"].schema_, airports))
    airlines = [{"carrier": "B6", "name": "JetBlue Airways"}, {"carrier": "UA", "name": "United Air Lines"}]
    warehouse.write(spec.name, "airlines", _frame(refs["airlines"].schema_, airlines))
    return warehouse


def _records() -> list[dict]:
    base = {"year": 2013, "month": 1, "day": 20, "sched_dep_time": 1000, "sched_arr_time": 1300, "carrier": "B6",
            "flight": 1, "tailnum": "N1", "origin": "JFK", "dest": "FLL", "distance": 1069.0, "hour": 10,
            "minute": 0, "time_hour": "2013-01-20T10:00:00+00:00"}  # fmt: skip
    return [
        base,
        {**base, "flight": 2, "origin": "EWR", "tailnum": "N404"},  # a plane the table does not know
        {**base, "flight": 3, "tailnum": None, "hour": 11, "time_hour": "2013-01-20T11:00:00Z"},
        {**base, "flight": 4, "hour": 12, "time_hour": "2013-01-20T12:00:00+00:00"},  # no weather that hour
        {**base, "flight": 5, "day": 21, "time_hour": "2013-01-21T10:00:00+00:00"},  # no weather that day
    ]


def _online_features(online: OnlineFeatures, spec: PipelineSpec, records: list[dict]) -> pl.DataFrame:
    return online.features(online.frame(RecordValidator(spec).columns(records)))[0]


def _whole(spec: PipelineSpec, store: ParquetWarehouse) -> dict[str, pl.DataFrame]:
    """Every reference table whole (weather of DAY: NEXT_DAY has none)."""
    return {
        "weather": store.read(spec.name, "weather", DAY),
        **{name: store.read(spec.name, name) for name in ("planes", "airports", "airlines")},
    }


def test_filtered_references_give_the_features_of_the_whole_tables(
    spec: PipelineSpec, store: ParquetWarehouse
) -> None:
    # filter every keyed table, however small, whatever the request's size
    online = OnlineFeatures(spec, store, filter_min_rows=0, filter_max_share=math.inf)
    raw = online.frame(RecordValidator(spec).columns(_records()))
    features, days = online.features(raw)

    assert features.equals(compute_features(spec, raw, _whole(spec, store)))
    assert days == [DAY, DAY, DAY, DAY, NEXT_DAY]
    assert features["temp"].to_list() == [30.0, 12.0, 31.0, None, None]
    assert features["plane_age"].to_list() == [13.0, None, None, 13.0, 13.0]
    filtered = {name for (name, _), table in online.loaded.items() if table.rows is not None}
    assert filtered == {"weather", "planes", "airlines"}  # airports: requests carry no "faa"


def test_a_request_large_beside_an_indexed_table_gets_the_whole_table(
    spec: PipelineSpec, store: ParquetWarehouse
) -> None:
    """Filtering pays only while the request is small beside the table: here up to half its rows
    (planes has two), the first request's one plane; the five records get both planes."""
    online = OnlineFeatures(spec, store, filter_min_rows=0, filter_max_share=0.5)
    validator = RecordValidator(spec)
    one = online.frame(validator.columns(_records()[:1]))
    five = online.frame(validator.columns(_records()))

    assert online.references(one, [DAY])["planes"]["tailnum"].to_list() == ["N1"]
    assert online.references(five, [DAY])["planes"]["tailnum"].to_list() == ["N1", "N2"]
    assert online.features(five)[0].equals(compute_features(spec, five, _whole(spec, store)))


def test_a_replaced_partition_is_read_again_once_its_version_is_rechecked(
    spec: PipelineSpec, store: ParquetWarehouse
) -> None:
    fresh = OnlineFeatures(spec, store, filter_min_rows=0, recheck_seconds=0, filter_max_share=math.inf)
    cached = OnlineFeatures(spec, store, filter_min_rows=0, recheck_seconds=3600, filter_max_share=math.inf)
    records = _records()[:1]
    assert _online_features(fresh, spec, records)["temp"].item() == 30.0
    assert _online_features(cached, spec, records)["temp"].item() == 30.0

    store.write(spec.name, "weather", _weather(spec, 40.0), DAY)

    assert _online_features(fresh, spec, records)["temp"].item() == 40.0
    assert _online_features(cached, spec, records)["temp"].item() == 30.0  # not compared again yet


@pytest.mark.parametrize("remembered", [online_module.REMEMBERED_VALUES, 2])  # 2: forgets as it goes
def test_event_days_are_the_local_date_of_the_timestamp_remembered_per_value(
    spec: PipelineSpec, store: ParquetWarehouse, remembered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service derives the day from time_hour in New York time, never from the record's
    # redundant year/month/day: 03:00 UTC on the 21st is 22:00 on the 20th in New York.
    monkeypatch.setattr(online_module, "REMEMBERED_VALUES", remembered)
    online = OnlineFeatures(spec, store)
    late = {**_records()[0], "flight": 6, "hour": 22, "time_hour": "2013-01-21T03:00:00Z"}
    wrong_fields = {**_records()[0], "flight": 7, "month": 9, "day": 30}
    raw = online.frame(RecordValidator(spec).columns([*_records(), late, wrong_fields]))
    expected = [DAY, DAY, DAY, DAY, NEXT_DAY, DAY, DAY]

    assert online.event_days(raw.head(1)) == [DAY]
    assert online.event_days(raw) == expected
    assert online.event_days(raw.reverse()) == expected[::-1]  # now from what it remembers
