"""Arrow IPC batches are held to the contract JSON records are held to: the same frame when valid,
the same fields (and records) named when not. Plain code, no server: records built here."""

from __future__ import annotations

import json

import polars as pl
import pytest

from mlplatform.core.pipelines import load_spec
from mlplatform.core.table_spec import ColumnSpec
from mlplatform.serving.arrow_batch import ROWS_NAMED, ArrowRecords, _violations, ipc_stream
from mlplatform.serving.online import OnlineFeatures
from mlplatform.serving.schema import RecordValidator, Rejected

SPEC = load_spec("flight_delay")
VALIDATOR, ARROW = RecordValidator(SPEC), ArrowRecords(SPEC)
FLIGHT = {
    "year": 2013,
    "month": 1,
    "day": 20,
    "sched_dep_time": 1700,
    "sched_arr_time": 2014,
    "carrier": "UA",
    "flight": 1545,
    "tailnum": "N14228",
    "origin": "EWR",
    "dest": "IAH",
    "distance": 1400.0,
    "hour": 17,
    "minute": 0,
    "time_hour": "2013-01-20T22:00:00+00:00",
}
RECORDS = [
    FLIGHT,
    {**FLIGHT, "carrier": "AA", "origin": "JFK", "tailnum": None, "flight": 11, "distance": 1089.5},
    {**FLIGHT, "month": 12, "day": 31, "hour": 6, "sched_dep_time": 600, "time_hour": "2013-12-31T11:00:00Z"},
]


def _json_frame(records: list[dict]) -> pl.DataFrame:
    columns, _, _ = VALIDATOR.request(json.dumps({"records": records}).encode(), 1000)
    return OnlineFeatures(SPEC, None).frame(columns)  # no warehouse: frame() reads no table


EXPECTED = _json_frame(RECORDS)


@pytest.mark.parametrize(
    "retyped",
    [
        pl.col("month").cast(pl.Int8),
        pl.col("flight").cast(pl.UInt32),
        pl.col("distance").cast(pl.Float32),  # 1400.0 and 1089.5 are exact in 32 bits
        pl.col("carrier").cast(pl.Categorical),
        pl.col("origin").cast(pl.Enum(["EWR", "JFK", "LGA"])),
        pl.col("time_hour").dt.cast_time_unit("ns"),
        pl.col("time_hour").dt.convert_time_zone("America/New_York").dt.cast_time_unit("ms"),
    ],
    ids=["int8", "uint32", "float32", "categorical", "enum", "utc-ns", "new-york-ms"],
)
def test_a_frame_library_s_column_types_give_the_json_path_s_frame(retyped: pl.Expr) -> None:
    sent = EXPECTED.with_columns(retyped)
    assert sent.schema != EXPECTED.schema

    typed = ARROW.frame(ipc_stream(sent), 1000)

    assert typed.schema == EXPECTED.schema
    assert typed.equals(EXPECTED)


def test_an_all_null_column_is_a_nullable_field_and_nothing_else() -> None:
    accepted = ARROW.frame(ipc_stream(EXPECTED.with_columns(tailnum=pl.lit(None))), 1000)
    assert accepted["tailnum"].null_count() == len(RECORDS)
    with pytest.raises(Rejected) as refused:
        ARROW.frame(ipc_stream(EXPECTED.with_columns(carrier=pl.lit(None))), 1000)
    assert [(f["field"], f["rows"]) for f in refused.value.details["fields"]] == [("carrier", [0, 1, 2])]


# Each case sets one field of records 0 and 2 (flight 1545) to a value the contract refuses.
BROKEN = {
    "out of range": ("month", 13),
    "below the minimum": ("distance", -5.0),
    "not an allowed value": ("origin", "XXX"),
    "null where required": ("carrier", None),
    "NaN": ("distance", float("nan")),
    "infinity": ("distance", float("inf")),  # above the maximum too: named once, as not finite
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_value_names_the_same_records_and_field_either_way(case: str) -> None:
    field, value = BROKEN[case]
    records = [{**r, field: value} if r["flight"] == 1545 else r for r in RECORDS]
    frame = EXPECTED.with_columns(
        pl.when(pl.col("flight") == 1545).then(pl.lit(value)).otherwise(pl.col(field)).alias(field)
    )
    with pytest.raises(Rejected) as as_json:
        VALIDATOR.request(json.dumps({"records": records}).encode(), 1000)
    with pytest.raises(Rejected) as as_arrow:
        ARROW.frame(ipc_stream(frame), 1000)

    named_json = [(f["field"], f["problem"]) for f in as_json.value.details["fields"]]
    [named_arrow] = as_arrow.value.details["fields"]
    assert (as_json.value.status, as_arrow.value.status) == (422, 422)
    assert [name for name, _ in named_json] == [f"0.{field}", f"2.{field}"]
    assert (named_arrow["field"], named_arrow["rows"], named_arrow["count"]) == (field, [0, 2], 2)
    if value is not None:  # pydantic words a null by the type it expected; the rule is the same
        assert named_arrow["problem"] == named_json[0][1]


def _edges(column: ColumnSpec) -> list:
    """Values at, inside and just past each bound of a field, and the values no float may hold."""
    values: list = [None]
    for bound in (column.min, column.max):
        if bound is not None:
            values += (
                [bound - 1, bound, bound + 1] if column.type == "int" else [bound - 0.5, bound, bound + 0.5]
            )
    if column.type == "float":
        values += [float("nan"), float("inf"), float("-inf")]
    if column.type == "str":
        values += [
            "x" * (column.text_limit or 1),
            "x" * ((column.text_limit or 1) + 1),
            *(column.allowed or []),
        ]
    return values


def test_the_cheap_pass_finds_a_broken_rule_exactly_when_a_query_of_every_rule_does() -> None:
    """Nulls, ranges and finiteness are read from each column's statistics and the other rules
    asked in one query: for every field and every value at, inside or past its bounds (and NaN,
    infinities, nulls, strings at and over their limit), that says a batch breaks the contract
    exactly when asking polars about every rule does."""
    every_rule = [
        rule.broken.any().alias(f"{name} {n}")
        for name, column in ARROW.columns.items()
        for n, rule in enumerate(_violations(name, column))
    ]
    seen = set()
    for field, column in ARROW.columns.items():
        for value in _edges(column):
            if column.type == "int" and value is not None:
                value = int(value)
            frame = EXPECTED.with_columns(
                pl.when(pl.col("flight") == 1545)
                .then(pl.lit(value, EXPECTED.schema[field]))
                .otherwise(pl.col(field))
                .alias(field)
            )
            expected = any(frame.select(every_rule).row(0))
            assert ARROW.broken(frame) == expected, (field, value)
            seen.add(expected)
    assert seen == {True, False}


@pytest.mark.parametrize(
    ("sent", "field", "problem"),
    [
        (EXPECTED.drop("carrier"), "carrier", "Field required"),
        (EXPECTED.with_columns(arr_delay=pl.lit(12.0)), "arr_delay", "Extra inputs are not permitted"),
        (EXPECTED.with_columns(pl.col("month").cast(pl.Float64)), "month", "cannot hold this int field"),
        (EXPECTED.with_columns(pl.col("distance").cast(pl.String)), "distance", "cannot hold this float"),
        (
            EXPECTED.with_columns(pl.col("time_hour").cast(pl.String)),
            "time_hour",
            "cannot hold this datetime field",
        ),
    ],
    ids=["missing", "extra (an outcome)", "float for int", "string for float", "string for datetime"],
)
def test_a_wrong_column_is_named(sent: pl.DataFrame, field: str, problem: str) -> None:
    with pytest.raises(Rejected) as refused:
        ARROW.frame(ipc_stream(sent), 1000)
    assert refused.value.status == 422
    [named] = refused.value.details["fields"]
    assert named["field"] == field and problem in named["problem"]


def test_only_the_first_offending_rows_are_listed_and_all_are_counted() -> None:
    many = pl.concat([EXPECTED] * 10).with_columns(month=pl.lit(0))
    with pytest.raises(Rejected) as refused:
        ARROW.frame(ipc_stream(many), 1000)
    [named] = refused.value.details["fields"]
    assert named["rows"] == list(range(ROWS_NAMED)) and named["count"] == many.height


@pytest.mark.parametrize(
    ("body", "limit", "status", "problem"),
    [
        (b"", 1000, 400, "malformed Arrow IPC stream"),
        (b'{"records": []}', 1000, 400, "malformed Arrow IPC stream"),
        (ipc_stream(EXPECTED.head(0)), 1000, 422, "the batch is empty"),
        (ipc_stream(EXPECTED), 2, 413, "3 records exceed the maximum batch of 2"),
        (ipc_stream(EXPECTED.with_columns(flight=pl.lit(2**64 - 1, pl.UInt64))), 1000, 422, "'flight'"),
    ],
    ids=["empty body", "JSON sent as Arrow", "no rows", "too many rows", "u64 above i64"],
)
def test_a_bad_body_is_refused_by_name(body: bytes, limit: int, status: int, problem: str) -> None:
    with pytest.raises(Rejected) as refused:
        ARROW.frame(body, limit)
    assert refused.value.status == status and problem in refused.value.problem


def test_the_json_path_names_a_single_record_s_field_without_a_record_number() -> None:
    with pytest.raises(Rejected) as refused:
        VALIDATOR.request(json.dumps({**FLIGHT, "month": 13}).encode(), 1000)
    assert [f["field"] for f in refused.value.details["fields"]] == ["month"]
