"""Reading landing files: every column is typed by the schema, and anything that cannot be typed
(or read at all) is a LandingFileError naming the file, the column and the 1-based data rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mlplatform.core.data.landing import LandingFileError, read_landing_file
from mlplatform.core.spec import TableSchema

SCHEMA = TableSchema.model_validate(
    {
        "columns": {
            "id": {"type": "int"},
            "score": {"type": "float", "nullable": True},
            "at": {"type": "datetime"},
            "on": {"type": "date", "nullable": True},
            "flag": {"type": "bool", "nullable": True},
            "name": {"type": "str", "nullable": True},
        }
    }
)
NULLS = ["", "NA"]
HEADER = "id,score,at,on,flag,name"
GOOD_ROW = "1,0.5,2013-01-01T05:00:00Z,2013-01-01,true,a"
UTC = dt.UTC


def write(tmp_path: Path, *lines: str, name: str = "day.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_columns_are_typed_by_the_schema(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id,name,score,at,on,flag,extra",
        "1,a,0.5,2013-01-01T05:00:00Z,2013-01-01,true,x",
        "12.0,NA,-3,2013-01-01T23:59:00Z,,FALSE,y",
        "-7,,NA,2013-01-02T00:00:00Z,NA,NA,z",
    )

    frame = read_landing_file(path, SCHEMA, NULLS)

    expected = pl.DataFrame(
        {
            "id": [1, 12, -7],
            "score": [0.5, -3.0, None],
            "at": [
                dt.datetime(2013, 1, 1, 5, tzinfo=UTC),
                dt.datetime(2013, 1, 1, 23, 59, tzinfo=UTC),
                dt.datetime(2013, 1, 2, 0, 0, tzinfo=UTC),
            ],
            "on": [dt.date(2013, 1, 1), None, None],
            "flag": [True, False, None],
            "name": ["a", None, None],
        },
        schema={
            "id": pl.Int64,
            "score": pl.Float64,
            "at": pl.Datetime("us", "UTC"),
            "on": pl.Date,
            "flag": pl.Boolean,
            "name": pl.String,
        },
    )
    # Schema order, declared types, extra columns dropped, "12.0" read as the integer 12.
    assert_frame_equal(frame, expected)


def test_datetime_with_offset_is_converted_to_utc(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,0.5,2013-01-01T05:00:00+01:00,,,")

    frame = read_landing_file(path, SCHEMA, NULLS)

    assert frame["at"].to_list() == [dt.datetime(2013, 1, 1, 4, tzinfo=UTC)]


def test_large_integers_are_kept_exactly(tmp_path: Path) -> None:
    # 2**53 + 1: representable as Int64, not as float64. An int column must not round it.
    path = write(tmp_path, HEADER, "9007199254740993,0.5,2013-01-01T05:00:00Z,,,")

    frame = read_landing_file(path, SCHEMA, NULLS)

    assert frame["id"].to_list() == [9007199254740993]


@pytest.mark.parametrize(
    ("column", "bad_line", "value"),
    [
        ("id", "abc,0.5,2013-01-01T05:00:00Z,,,", "abc"),
        ("id", "12.5,0.5,2013-01-01T05:00:00Z,,,", "12.5"),
        ("score", "3,high,2013-01-01T05:00:00Z,,,", "high"),
        ("at", "3,0.5,yesterday at noon,,,", "yesterday at noon"),
        ("at", "3,0.5,2013-02-30T05:00:00Z,,,", "2013-02-30T05:00:00Z"),
        ("on", "3,0.5,2013-01-01T05:00:00Z,01/02/2013x,,", "01/02/2013x"),
        ("flag", "3,0.5,2013-01-01T05:00:00Z,,maybe,", "maybe"),
    ],
)
def test_untypable_value_names_file_column_and_row(
    tmp_path: Path, column: str, bad_line: str, value: str
) -> None:
    path = write(tmp_path, HEADER, GOOD_ROW, "2,0.5,2013-01-01T06:00:00Z,,,", bad_line, GOOD_ROW)

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    message = str(raised.value)
    assert str(path) in message
    assert f"column {column!r}" in message
    assert "1 value(s)" in message
    assert "rows [3]" in message  # the third data row (the header is not counted)
    assert repr(value) in message
    assert raised.value.path == str(path)


def test_untypable_value_in_first_row_is_reported(tmp_path: Path) -> None:
    # The first value is where datetime format inference starts: garbage there is still a typed error.
    path = write(tmp_path, HEADER, "1,0.5,garbage,,,", GOOD_ROW)

    with pytest.raises(LandingFileError, match=r"column 'at': 1 value\(s\).*rows \[1\]"):
        read_landing_file(path, SCHEMA, NULLS)


def test_every_bad_row_is_counted_and_the_first_ten_listed(tmp_path: Path) -> None:
    bad = [f"x{n},0.5,2013-01-01T05:00:00Z,,," for n in range(1, 13)]
    path = write(tmp_path, HEADER, GOOD_ROW, *bad)

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    assert "column 'id': 12 value(s)" in str(raised.value)
    assert f"rows {list(range(2, 12))}" in str(raised.value)
    assert len(raised.value.rows) == 10


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "id,score,on,flag,name", "1,0.5,,,")

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    message = str(raised.value)
    assert str(path) in message
    assert "missing column(s) ['at']" in message


def test_null_in_file_is_not_a_type_error(tmp_path: Path) -> None:
    # Typing only rejects values it cannot cast; whether a null is allowed is the contract's job.
    path = write(tmp_path, HEADER, "NA,0.5,2013-01-01T05:00:00Z,,,")

    frame = read_landing_file(path, SCHEMA, NULLS)

    assert frame["id"].to_list() == [None]


def test_zero_byte_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "2013-01-01.csv"
    path.write_text("")

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    assert str(raised.value) == f"{path}: file is empty (0 bytes)"


@pytest.mark.parametrize("content", [f"{HEADER}\n", HEADER], ids=["header-only", "header-without-newline"])
def test_header_only_file_gives_an_empty_typed_frame(tmp_path: Path, content: str) -> None:
    # No rows is not a typing problem: the volume gate blocks an empty partition (see test_ingest).
    path = tmp_path / "2013-01-01.csv"
    path.write_text(content)

    frame = read_landing_file(path, SCHEMA, NULLS)

    assert frame.height == 0
    assert frame.schema == pl.Schema(
        {
            "id": pl.Int64,
            "score": pl.Float64,
            "at": pl.Datetime("us", "UTC"),
            "on": pl.Date,
            "flag": pl.Boolean,
            "name": pl.String,
        }
    )


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "not-delivered.csv"
    with pytest.raises(LandingFileError, match=r"not-delivered\.csv: file does not exist"):
        read_landing_file(path, SCHEMA, NULLS)


def test_ragged_csv_is_a_landing_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, GOOD_ROW, "2,0.5,2013-01-01T05:00:00Z,,,,,,,")

    with pytest.raises(LandingFileError, match="not a readable CSV file"):
        read_landing_file(path, SCHEMA, NULLS)


def test_parquet_landing_file_is_typed_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "day.parquet"
    pl.DataFrame(
        {"id": ["1", "2.0"], "score": ["0.5", None], "at": ["2013-01-01T05:00:00Z"] * 2, "on": [None, None]}
        | {"flag": ["true", "false"], "name": ["a", "b"]}
    ).write_parquet(path)

    frame = read_landing_file(path, SCHEMA, NULLS)

    assert frame["id"].to_list() == [1, 2]
    assert frame["score"].to_list() == [0.5, None]
    assert frame.schema["at"] == pl.Datetime("us", "UTC")
