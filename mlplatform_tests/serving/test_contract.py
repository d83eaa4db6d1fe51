"""The predict contract refuses, by field, everything the scoring path could not handle, on the JSON
and the Arrow path alike: wrong JSON types (no coercion), integers beyond Int64, over-long strings,
impossible calendar dates, unknown top-level keys. Plain code, no server: records built here."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError

from mlplatform.core.pipelines import load_spec
from mlplatform.core.table_spec import DEFAULT_MAX_LENGTH, ColumnSpec
from mlplatform.serving import online as online_module
from mlplatform.serving.arrow_batch import ArrowRecords, ipc_stream
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.schema import RecordValidator, Rejected, record_model
from mlplatform_tests.serving.test_arrow_batch import EXPECTED, FLIGHT, RECORDS

SPEC = load_spec("flight_delay")
VALIDATOR, ARROW = RecordValidator(SPEC), ArrowRecords(SPEC)


def _refused(body: Any) -> Rejected:
    with pytest.raises(Rejected) as refused:
        VALIDATOR.request(json.dumps(body).encode(), 1000)
    return refused.value


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("distance", "1069", "Input should be a valid number"),  # a string is not a number
        ("distance", True, "Input should be a valid number"),  # nor is a boolean
        ("flight", "1545", "Input should be a valid integer"),
        ("flight", True, "Input should be a valid integer"),
        ("flight", 1545.5, "Input should be a valid integer"),
        ("flight", 10**30, "less than or equal to 9223372036854775807"),  # beyond Int64
        ("flight", 2**63, "less than or equal to 9223372036854775807"),
        ("year", -(2**70), "greater than or equal to 2013"),
        ("dest", 7, "Input should be a valid string"),
        ("dest", "X" * (DEFAULT_MAX_LENGTH + 1), f"at most {DEFAULT_MAX_LENGTH} characters"),
        ("time_hour", 1358719200, "ISO 8601"),  # seconds since 1970 are not a datetime here
        ("time_hour", "1358719200", "ISO 8601"),
        ("time_hour", True, "ISO 8601"),
        ("time_hour", "2013-02-31T10:00:00Z", "day value is outside expected range"),
        ("time_hour", "2013-01-20T10:00:00", "should have timezone info"),  # no instant without an offset
    ],
)
def test_a_value_of_the_wrong_kind_is_a_422_naming_the_field(field: str, value: Any, problem: str) -> None:
    single, batch = (
        _refused({**FLIGHT, field: value}),
        _refused({"records": [FLIGHT, {**FLIGHT, field: value}]}),
    )

    assert (single.status, batch.status) == (422, 422)
    [named] = single.details["fields"]
    assert named["field"] == field and problem in named["problem"], named
    assert [f["field"] for f in batch.details["fields"]] == [f"1.{field}"]


def test_records_cut_into_columns_get_the_values_the_record_model_gives() -> None:
    """The column path (fields in one order, cut in C; or in several orders, or an optional field
    left out) accepts exactly what the per-record model accepts, with the same values."""
    model = record_model(SPEC)
    shuffled = [dict(reversed(list(r.items()))) if n % 2 else r for n, r in enumerate(RECORDS)]
    without = [{k: v for k, v in r.items() if k != "tailnum" or v is not None} for r in RECORDS]
    offsets = [{**r, "time_hour": r["time_hour"].replace("Z", "+05:30")} for r in RECORDS]
    for records in (RECORDS, shuffled, without, offsets):
        expected = [model.model_validate(r).model_dump() for r in records]
        columns = VALIDATOR.columns(records)
        assert [
            dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)
        ] == expected


def test_the_largest_int64_and_a_string_at_the_limit_pass() -> None:
    columns, size, _ = VALIDATOR.request(
        json.dumps({**FLIGHT, "flight": 2**63 - 1, "dest": "X" * DEFAULT_MAX_LENGTH}).encode(), 1000
    )
    assert size == 1 and columns["flight"] == [2**63 - 1]
    assert OnlineFeatures(SPEC, None).frame(columns)["flight"].dtype == pl.Int64


def test_a_key_beside_records_is_a_422_naming_it() -> None:
    refused = _refused({"records": [FLIGHT], "recrods": [], "debug": True})
    assert refused.status == 422
    assert refused.details["fields"] == [
        {"field": "debug", "problem": "Extra inputs are not permitted"},
        {"field": "recrods", "problem": "Extra inputs are not permitted"},
    ]


def test_max_length_comes_from_the_spec_and_holds_on_both_paths() -> None:
    columns = dict(SPEC.schema_.columns)
    columns["dest"] = ColumnSpec(type="str", max_length=3)
    spec = SPEC.model_copy(update={"schema_": SPEC.schema_.model_copy(update={"columns": columns})})
    validator, arrow = RecordValidator(spec), ArrowRecords(spec)
    validator.request(json.dumps({**FLIGHT, "dest": "IAH"}).encode(), 10)

    with pytest.raises(Rejected) as as_json:
        validator.request(json.dumps({"records": [FLIGHT, {**FLIGHT, "dest": "KIAH"}]}).encode(), 10)
    with pytest.raises(Rejected) as as_arrow:
        arrow.frame(ipc_stream(EXPECTED.with_columns(dest=pl.lit("KIAH"))), 10)

    [named_json] = as_json.value.details["fields"]
    [named_arrow] = as_arrow.value.details["fields"]
    assert named_json == {"field": "1.dest", "problem": "String should have at most 3 characters"}
    assert (named_arrow["field"], named_arrow["problem"], named_arrow["count"]) == (
        "dest",
        "String should have at most 3 characters",
        len(RECORDS),
    )


def test_max_length_is_only_for_str_columns() -> None:
    with pytest.raises(ValidationError, match="max_length only applies to str columns"):
        ColumnSpec(type="int", max_length=3)


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        (EXPECTED.with_columns(pl.col("distance").cast(pl.String)), "cannot hold this float field"),
        (EXPECTED.with_columns(distance=pl.lit(True)), "cannot hold this float field"),
        (EXPECTED.with_columns(flight=pl.lit(True)), "cannot hold this int field"),
        (EXPECTED.with_columns(pl.col("dest").cast(pl.Int64, strict=False)), "cannot hold this str field"),
        (EXPECTED.with_columns(flight=pl.lit(2**63 + 5, pl.UInt64)), "invalid record"),
        (
            EXPECTED.with_columns(pl.col("time_hour").dt.replace_time_zone(None)),
            "cannot hold this datetime field",
        ),
    ],
    ids=[
        "string for float",
        "bool for float",
        "bool for int",
        "int for str",
        "uint64 beyond int64",
        "naive time",
    ],
)
def test_the_arrow_path_refuses_what_the_json_path_refuses(sent: pl.DataFrame, problem: str) -> None:
    with pytest.raises(Rejected) as refused:
        ARROW.frame(ipc_stream(sent), 1000)
    assert (
        refused.value.status == 422 and problem in json.dumps(refused.value.details) + refused.value.problem
    )


@pytest.mark.parametrize(
    ("month", "day", "refused"),
    [(2, 31, True), (2, 29, True), (4, 31, True), (2, 28, True), (12, 31, True), (1, 20, False)],
)
def test_an_impossible_or_inconsistent_date_is_found_on_both_paths(
    month: int, day: int, refused: bool
) -> None:
    """Each field passes its own range (month 1-12, day 1-31); together they must make the date of
    the record's timestamp (2013-01-20 in New York), as ingestion requires."""
    online = OnlineFeatures(SPEC, None)
    records = [FLIGHT, {**FLIGHT, "month": month, "day": day}]
    columns, _, _ = VALIDATOR.request(json.dumps({"records": records}).encode(), 10)
    frame = ARROW.frame(ipc_stream(online.frame(columns)), 10)

    # The flight's day is the New York date of time_hour; year/month/day/hour must agree with it,
    # so a date the fields cannot form is refused like any other disagreement.
    expected = [1] if refused else []
    fields = ["time_hour", "year", "month", "day", "hour"]
    assert online.undated(columns)[:2] == (fields, expected)
    assert online.undated(frame)[:2] == (fields, expected)
    # The days the check computes on its way are the scorer's (it takes them instead of its own).
    assert online.undated(columns).days == online.undated(frame).days == online.event_days(frame)


def test_a_frame_is_checked_by_its_distinct_rows_as_its_rows_one_by_one() -> None:
    """A typed frame (a JSON batch, an Arrow batch) is judged once per distinct (time_hour, year,
    month, day, hour) and the verdicts spread to every row: the same refused rows and event days as
    keying every row in Python (the path of single records), repeated rows and the same instant
    written with another offset included; a frame with a null is keyed row by row."""
    five_hours_behind = dt.timezone(dt.timedelta(hours=-5))
    shifted = dt.datetime.fromisoformat(FLIGHT["time_hour"]).astimezone(five_hours_behind).isoformat()
    late = {**FLIGHT, "time_hour": "2013-01-21T05:00:00+00:00", "day": 21, "hour": 0}  # midnight in New York
    records = [
        FLIGHT,
        {**FLIGHT, "month": 2, "day": 31},
        {**FLIGHT, "time_hour": shifted},
        late,
        {**FLIGHT, "hour": (FLIGHT["hour"] + 1) % 24},
        FLIGHT,
        {**FLIGHT, "month": 2, "day": 31},
        late,
    ]
    columns = VALIDATOR.columns(records)
    frame = OnlineFeatures(SPEC, None).frame(columns)
    with_null = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("year")).alias("year")
    )

    by_rows = OnlineFeatures(SPEC, None).undated(columns)
    distinct = OnlineFeatures(SPEC, None).undated(frame)

    assert online_module._distinct(frame, by_rows.fields) is not None  # the distinct rows' path
    assert distinct == by_rows
    assert by_rows.rows == [1, 4, 6] and by_rows.days[3] != by_rows.days[0] == by_rows.days[2]
    assert online_module._distinct(with_null, by_rows.fields) is None
    assert OnlineFeatures(SPEC, None).undated(with_null).rows == [1, 4, 6]


@pytest.mark.parametrize("remembered", [online_module.REMEMBERED_VALUES, 3])  # 3: forgets as it goes
def test_remembered_verdicts_are_the_verdicts_of_each_request_alone(
    remembered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consistency check is remembered per distinct (time_hour, year, month, day, hour): a
    request answered from memory gets the verdict a fresh check gives it alone, whatever was seen
    before, including the same instant written with another offset and a record that differs from
    a consistent one by one field."""
    monkeypatch.setattr(online_module, "REMEMBERED_VALUES", remembered)
    five_hours_behind = dt.timezone(dt.timedelta(hours=-5))
    shifted = dt.datetime.fromisoformat(FLIGHT["time_hour"]).astimezone(five_hours_behind).isoformat()
    records = [
        FLIGHT,
        {**FLIGHT, "time_hour": shifted},  # the same instant: consistent
        {**FLIGHT, "hour": (FLIGHT["hour"] + 1) % 24},
        {**FLIGHT, "day": 21},
        {**FLIGHT, "month": 2, "day": 31},
        {**FLIGHT, "time_hour": FLIGHT["time_hour"].replace("-20T", "-21T")},  # a day later
        FLIGHT,
    ]
    alone = [OnlineFeatures(SPEC, None).undated(VALIDATOR.columns([r]))[1] for r in records]
    online = OnlineFeatures(SPEC, None)

    for _ in range(2):
        assert [online.undated(VALIDATOR.columns([r]))[1] for r in records] == alone
        assert online.undated(VALIDATOR.columns(records))[1] == [n for n, rows in enumerate(alone) if rows]
    assert alone == [[], [], [0], [0], [0], [0], []]
