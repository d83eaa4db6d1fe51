"""Reading landing files: every column is typed by the schema (timestamps by their declared rule,
never guessed), a blank is a null, an undeclared column is refused or kept as the schema says,
and every problem of a file comes back in one report naming the file, each column, its count and
first 1-based data rows, or the line and byte where parsing failed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mlplatform.core.data.landing import LandingFileError, land_file, read_landing_file
from mlplatform.core.table_spec import TableSchema

COLUMNS = {
    "id": {"type": "int"},
    "score": {"type": "float", "nullable": True},
    "at": {"type": "datetime"},
    "on": {"type": "date", "nullable": True},
    "flag": {"type": "bool", "nullable": True},
    "name": {"type": "str", "nullable": True},
}
SCHEMA = TableSchema.model_validate({"primary_key": ["id"], "columns": COLUMNS})
NULLS = ["NA"]
HEADER = "id,score,at,on,flag,name"
GOOD_ROW = "1,0.5,2013-01-01T05:00:00Z,2013-01-01,true,a"
UTC = dt.UTC


def write(tmp_path: Path, *lines: str, name: str = "day.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def schema_with(**changes: object) -> TableSchema:
    return TableSchema.model_validate({"primary_key": ["id"], "columns": COLUMNS} | changes)


def test_columns_are_typed_by_the_schema(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id,name,score,at,on,flag",
        "1,a,0.5,2013-01-01T05:00:00Z,2013-01-01,true",
        "12.0,NA,-3,2013-01-01T23:59:00Z,,FALSE",
        "-7,,NA,2013-01-02T00:00:00Z,NA,NA",
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
    # Schema order, declared types, "12.0" read as the integer 12.
    assert_frame_equal(frame, expected)


@pytest.mark.parametrize(
    ("value", "utc"),
    [
        ("2013-01-01T05:00:00+01:00", dt.datetime(2013, 1, 1, 4, tzinfo=UTC)),
        ("2013-01-01 05:00:00-05:00", dt.datetime(2013, 1, 1, 10, tzinfo=UTC)),
        ("2013-01-01T05:00Z", dt.datetime(2013, 1, 1, 5, tzinfo=UTC)),
        ("2013-01-01T05:00:00.250+0000", dt.datetime(2013, 1, 1, 5, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_iso_datetime_with_an_offset_is_converted_to_utc(
    tmp_path: Path, value: str, utc: dt.datetime
) -> None:
    path = write(tmp_path, HEADER, f"1,0.5,{value},,,")

    assert read_landing_file(path, SCHEMA, NULLS)["at"].to_list() == [utc]


@pytest.mark.parametrize(
    "value",
    ["02/03/2013 05:00", "2013-01-01T05:00:00", "2013-01-01", "03.02.2013 05:00 +0000", "1357016400"],
    ids=["us-slashes", "no-offset", "date-only", "dotted", "epoch"],
)
def test_a_datetime_without_declared_format_must_be_iso_with_an_offset(tmp_path: Path, value: str) -> None:
    # 02/03/2013 is 2 March or 3 February depending on the reader; a naive time has no instant.
    path = write(tmp_path, HEADER, GOOD_ROW, f"2,0.5,{value},,,")

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    assert "column 'at' (1 value(s), row(s) 2): not an ISO 8601 datetime with its UTC offset" in str(
        raised.value
    )


def test_a_declared_format_is_read_in_its_declared_zone(tmp_path: Path) -> None:
    schema = schema_with(
        columns=COLUMNS
        | {"at": {"type": "datetime", "format": "%m/%d/%Y %H:%M", "timezone": "America/New_York"}}
    )
    path = write(tmp_path, HEADER, "1,,02/03/2013 05:00,,,", "2,,07/03/2013 05:00,,,")

    frame = read_landing_file(path, schema, NULLS)

    # 3 February, 05:00 in New York (UTC-5 in winter, UTC-4 in summer).
    assert frame["at"].to_list() == [
        dt.datetime(2013, 2, 3, 10, tzinfo=UTC),
        dt.datetime(2013, 7, 3, 9, tzinfo=UTC),
    ]


def test_a_local_time_that_occurs_twice_is_refused_not_guessed(tmp_path: Path) -> None:
    schema = schema_with(
        columns=COLUMNS
        | {"at": {"type": "datetime", "format": "%Y-%m-%d %H:%M", "timezone": "America/New_York"}}
    )
    # 01:30 on 3 November 2013 happened twice in New York (clocks went back at 02:00).
    path = write(tmp_path, HEADER, "1,,2013-11-03 00:30,,,", "2,,2013-11-03 01:30,,,")

    with pytest.raises(LandingFileError, match=r"column 'at' \(1 value\(s\), row\(s\) 2\)"):
        read_landing_file(path, schema, NULLS)


def test_large_integers_are_kept_exactly(tmp_path: Path) -> None:
    # 2**53 + 1: representable as Int64, not as float64. An int column must not round it.
    path = write(tmp_path, HEADER, "9007199254740993,0.5,2013-01-01T05:00:00Z,,,")

    assert read_landing_file(path, SCHEMA, NULLS)["id"].to_list() == [9007199254740993]


@pytest.mark.parametrize(
    ("column", "bad_line", "value"),
    [
        ("id", "abc,0.5,2013-01-01T05:00:00Z,,,", "abc"),
        ("id", "12.5,0.5,2013-01-01T05:00:00Z,,,", "12.5"),
        ("score", "3,high,2013-01-01T05:00:00Z,,,", "high"),
        ("at", "3,0.5,yesterday at noon,,,", "yesterday at noon"),
        ("at", "3,0.5,2013-02-30T05:00:00Z,,,", "2013-02-30T05:00:00Z"),
        ("on", "3,0.5,2013-01-01T05:00:00Z,01/02/2013,,", "01/02/2013"),
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
    assert message.startswith(
        f"{path}: column {column!r} (1 value(s), row(s) 3): "
    )  # the header is not counted
    assert repr(value) in message
    assert raised.value.path == str(path)


def test_every_problem_of_a_file_is_in_one_report(tmp_path: Path) -> None:
    bad = [f"x{n},high,2013-01-01T05:00:00Z,,,,surprise" for n in range(1, 13)]
    path = write(
        tmp_path, "id,score,at,flag,name,unused,extra", GOOD_ROW.replace(",2013-01-01,", ",") + ",", *bad
    )

    landed = land_file(path, SCHEMA, NULLS)

    report = {r["column"]: r for r in landed.problems.iter_rows(named=True)}
    assert set(report) == {"on", "extra", "unused", "id", "score"}
    assert report["id"]["count"] == 12 and report["id"]["rows"] == "2, 3, 4, 5, 6"
    assert report["score"]["count"] == 12
    assert report["on"]["check"] == "column present"
    assert "not in the schema (extra_columns: refuse)" in report["extra"]["failure_case"]
    # The typed frame still holds every column, bad cells as nulls, for the contract to judge the rest.
    assert landed.frame is not None and landed.frame.height == 13
    message = landed.message()
    for column in ("'id'", "'score'", "'on'", "'extra'", "'unused'"):
        assert column in message


def test_an_extra_column_is_stored_as_text_when_the_schema_ignores_extras(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + ",note", GOOD_ROW + ",kept")

    frame = read_landing_file(path, schema_with(extra_columns="ignore"), NULLS)

    assert frame.columns == [*COLUMNS, "note"]
    assert frame["note"].to_list() == ["kept"]


@pytest.mark.parametrize("blank", ['""', '" "', ""], ids=["quoted-empty", "quoted-space", "empty"])
def test_a_blank_value_is_a_null(tmp_path: Path, blank: str) -> None:
    path = write(tmp_path, HEADER, f"1,0.5,2013-01-01T05:00:00Z,,,{blank}")

    assert read_landing_file(path, SCHEMA, NULLS)["name"].to_list() == [None]


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "id,score,on,flag,name", "1,0.5,,,")

    with pytest.raises(LandingFileError) as raised:
        read_landing_file(path, SCHEMA, NULLS)

    message = str(raised.value)
    assert message.startswith(
        f"{path}: column 'at': missing; the file has ['id', 'score', 'on', 'flag', 'name']"
    )


def test_null_in_file_is_not_a_type_error(tmp_path: Path) -> None:
    # Typing only rejects values it cannot cast; whether a null is allowed is the contract's job.
    path = write(tmp_path, HEADER, "NA,0.5,2013-01-01T05:00:00Z,,,")

    assert read_landing_file(path, SCHEMA, NULLS)["id"].to_list() == [None]


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
    assert frame.schema["at"] == pl.Datetime("us", "UTC") and frame.schema["on"] == pl.Date


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "not-delivered.csv"
    with pytest.raises(LandingFileError, match=r"not-delivered\.csv: file does not exist"):
        read_landing_file(path, SCHEMA, NULLS)


def test_ragged_csv_names_the_first_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, GOOD_ROW, GOOD_ROW, "2,0.5,2013-01-01T05:00:00Z,,,,,,,")

    with pytest.raises(LandingFileError, match="not a readable CSV file: line 4 has 10 field"):
        read_landing_file(path, SCHEMA, NULLS)


def test_invalid_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(f"{HEADER}\n{GOOD_ROW}\n2,0.5,2013-01-01T05:00:00Z,,,caf".encode() + b"\xe9\n")
    offset = len(f"{HEADER}\n{GOOD_ROW}\n2,0.5,2013-01-01T05:00:00Z,,,caf")

    with pytest.raises(LandingFileError, match=rf"not UTF-8 at byte {offset} \(line 3\)"):
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


def test_parquet_timestamps_count_only_with_their_zone(tmp_path: Path) -> None:
    zoned = pl.datetime(2013, 1, 1, 5, time_zone="America/New_York")
    base = pl.DataFrame({"id": [1], "name": ["a"]}).with_columns(score=None, on=None, flag=None)
    base.with_columns(at=zoned).write_parquet(tmp_path / "zoned.parquet")
    base.with_columns(at=pl.datetime(2013, 1, 1, 5)).write_parquet(tmp_path / "naive.parquet")

    frame = read_landing_file(tmp_path / "zoned.parquet", SCHEMA, NULLS)

    assert frame["at"].to_list() == [dt.datetime(2013, 1, 1, 10, tzinfo=UTC)]
    with pytest.raises(LandingFileError, match="column 'at'"):
        read_landing_file(tmp_path / "naive.parquet", SCHEMA, NULLS)
