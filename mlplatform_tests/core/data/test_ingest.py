"""Ingesting a landing file: bad data comes back as failed gates with evidence (never as an
exception), including rows whose day (by the partition expression or the local date of a
timestamp) is not the file's, timestamps that disagree with their repeated parts, non-finite
floats, blank required text, undeclared columns and deliveries their done marker calls incomplete."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from mlplatform.core.data.contracts import FAILURE_COLUMNS, build_schema
from mlplatform.core.data.gates import DayRule
from mlplatform.core.data.ingest import IngestResult, IngestTable, ingest_file
from mlplatform.core.gate_result import GateResult
from mlplatform.core.table_spec import DaySpec, TableSchema, VolumeSpec

SCHEMA = TableSchema.model_validate(
    {
        "primary_key": ["flight"],
        "columns": {
            "flight": {"type": "int"},
            "year": {"type": "int"},
            "month": {"type": "int", "min": 1, "max": 12},
            "day": {"type": "int", "min": 1, "max": 31},
            "origin": {"type": "str", "allowed": ["EWR", "JFK", "LGA"]},
        },
    }
)
CONTRACT = build_schema("test.raw", SCHEMA)
PARTITION = "DATE(year || '-' || month || '-' || day)"
DAY = "2013-01-01"
HEADER = "flight,year,month,day,origin"


TABLE = IngestTable(
    "raw", "{day}.csv", SCHEMA, CONTRACT, ["NA"], DayRule(PARTITION, None, SCHEMA), VolumeSpec()
)


def ingest(path: Path, stored: dict[str, int] | None = None, table: IngestTable = TABLE) -> IngestResult:
    return ingest_file(path.parent, table, DAY, (stored or {}).get)


def gate(result: IngestResult, name: str) -> GateResult:
    (found,) = [g for g in result.gates if g.name == name]
    return found


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / f"{DAY}.csv"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_valid_file_passes_every_gate(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR", "2,2013,1,1,JFK", "3,2013,01,01,LGA")

    result = ingest(path)

    assert result.ok
    assert [g.name for g in result.gates] == ["contract", "primary_key", "completeness", "volume"]
    assert not any(g.blocks for g in result.gates)
    assert result.frame is not None
    assert result.frame.height == 3
    assert result.frame.schema["month"] == pl.Int64
    assert gate(result, "contract").evidence.height == 0
    assert result.summary() == f"{path}: 3 rows pass every gate"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty (0 bytes)"),
        (f"{HEADER}\n1,2013,1,1,EWR\n2,2013,1,1,EWR,a,b\n".encode(), "line 3 has 7 field(s), the header 5"),
        (f"{HEADER}\n1,2013,1,1,EWR\n2,2013,1,1,\xff".encode("latin-1"), "not UTF-8 at byte 55 (line 3)"),
    ],
    ids=["empty", "ragged", "not-utf8"],
)
def test_unparseable_file_fails_the_contract_gate_alone_without_raising(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / f"{DAY}.csv"
    path.write_bytes(content)

    result = ingest(path)

    assert not result.ok
    assert result.frame is None
    assert [g.name for g in result.gates] == ["contract"]  # no other gate runs on an unparsed file
    contract = gate(result, "contract")
    assert contract.blocks
    assert contract.summary.startswith(f"{path}: ")
    assert problem in contract.summary
    assert contract.evidence is not None
    assert contract.evidence.schema == pl.Schema(FAILURE_COLUMNS)
    assert contract.evidence["column"].to_list() == ["<file>"]
    assert problem in result.summary()


def test_every_problem_of_a_typed_file_is_in_the_contract_gate(tmp_path: Path) -> None:
    # A missing column, an untypeable one and a range violation in a third: one report with all.
    path = write(tmp_path, "flight,year,month,origin", "abc,2013,14,EWR", "2,2013,1,JFK")

    result = ingest(path)

    contract = gate(result, "contract")
    assert contract.blocks
    found = {(r["column"], r["count"], r["rows"]) for r in contract.evidence.iter_rows(named=True)}
    assert {("day", 1, None), ("flight", 1, "1"), ("month", 1, "1")} <= found
    for column in ("'day'", "'flight'", "'month'"):
        assert column in contract.summary


def test_header_only_file_is_blocked_by_the_volume_gate(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER)

    result = ingest(path)

    assert not result.ok
    assert result.frame is not None
    assert result.frame.height == 0
    assert gate(result, "volume").blocks
    assert "the partition has no rows" in result.summary()


def test_contract_violations_are_evidence_rows(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR", "2,2013,1,1,BOS", "3,2013,1,1,BOS")

    result = ingest(path)

    assert not result.ok
    contract = gate(result, "contract")
    assert contract.blocks
    assert set(contract.evidence.iter_rows()) == {("origin", "isin(['EWR', 'JFK', 'LGA'])", "BOS", 2, "2, 3")}
    assert contract.figures["violations"] == 2


def test_primary_key_duplicates_block_and_name_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR", "7,2013,1,1,JFK", "7,2013,1,1,LGA", "8,2013,1,1,EWR")

    result = ingest(path)

    assert not result.ok
    primary_key = gate(result, "primary_key")
    assert primary_key.blocks
    assert primary_key.evidence.to_dicts() == [{"flight": 7, "copies": 2}]
    assert primary_key.figures["duplicated_rows"] == 2
    assert not gate(result, "contract").blocks


def test_rows_of_another_day_are_flagged_with_their_day_and_count(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER,
        "1,2013,1,1,EWR",
        "2,2013,1,2,EWR",
        "3,2013,1,2,JFK",
        "4,2012,12,31,LGA",
        "5,2013,1,1,LGA",
    )

    result = ingest(path)

    assert not result.ok
    assert set(gate(result, "contract").evidence.iter_rows()) == {
        ("<partition>", f"{PARTITION} = {DAY}", "2012-12-31", 1, "4"),
        ("<partition>", f"{PARTITION} = {DAY}", "2013-01-02", 2, "2, 3"),
    }


def test_partition_and_volume_are_not_checked_without_a_day(tmp_path: Path) -> None:
    write(tmp_path, HEADER, "1,2013,1,2,EWR")

    static = IngestTable("raw", f"{DAY}.csv", SCHEMA, CONTRACT, ["NA"])
    result = ingest_file(tmp_path, static)

    assert result.ok
    assert [g.name for g in result.gates] == ["contract", "primary_key", "completeness"]


def test_volume_judges_the_trailing_days_and_the_partition_a_redelivery_replaces(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR")
    trailing = {"2012-12-29": 100, "2012-12-30": 90, "2012-12-31": 110}

    blocked = ingest(path, stored=trailing | {DAY: 40})
    warned = ingest(path, stored=trailing, table=replace(TABLE, volume=VolumeSpec(blocking=False)))

    volume = gate(blocked, "volume")
    assert volume.blocks
    assert volume.figures["trailing_median"] == 100 and volume.figures["stored_rows"] == 40
    assert "would replace the stored 40 (0.03 x" in volume.summary
    assert "1 rows = 0.01 x the median 100 of the last 3 day(s)" in volume.summary
    assert not gate(warned, "volume").passed and gate(warned, "volume").severity == "warn" and warned.ok


@pytest.mark.parametrize(
    ("marker", "blocks", "said"),
    [
        (None, True, "no done marker"),
        ("3\n", True, "the done marker says 3 rows, the file has 2"),
        ("2\n", False, "2 rows"),
        ("done", True, "holds 'done', not a row count"),
    ],
    ids=["missing", "says-more", "agrees", "not-a-count"],
)
def test_a_declared_done_marker_must_exist_and_agree(
    tmp_path: Path, marker: str | None, blocks: bool, said: str
) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR", "2,2013,1,1,JFK")
    if marker is not None:
        (tmp_path / f"{DAY}.csv.done").write_text(marker)
    table = replace(TABLE, volume=VolumeSpec(done_marker="{day}.csv.done"))

    volume = gate(ingest(path, table=table), "volume")

    assert volume.blocks is blocks
    assert said in volume.summary


@pytest.mark.parametrize(
    ("line", "expected_column"),
    [("2,2013,13,1,EWR", "month"), ("2,2013,2,30,EWR", "<partition>")],
    ids=["month-13", "february-30"],
)
def test_row_whose_day_cannot_be_computed_is_a_failure_not_an_exception(
    tmp_path: Path, line: str, expected_column: str
) -> None:
    # month 13 breaks the contract; 2013-02-30 passes it (1 <= day <= 31) but is no day at all.
    # Either way the partition expression cannot give the file's day, and ingest must report it.
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR", line)

    result = ingest(path)

    assert not result.ok
    contract = gate(result, "contract")
    assert contract.blocks
    assert expected_column in contract.evidence["column"].to_list()


TIMED = TableSchema.model_validate(
    {
        "primary_key": ["flight"],
        "columns": {
            "flight": {"type": "int"},
            "day": {"type": "int"},
            "hour": {"type": "int"},
            "dest": {"type": "str"},
            "delay": {"type": "float", "nullable": True},
            "at": {
                "type": "datetime",
                "timezone": "America/New_York",
                "consistent_with": {"day": "day", "hour": "hour"},
            },
        },
    }
)
TIMED_TABLE = IngestTable(
    "raw",
    "{day}.csv",
    TIMED,
    build_schema("test.timed", TIMED),
    ["NA"],
    DayRule(None, DaySpec(column="at", timezone="America/New_York"), TIMED),
)
TIMED_HEADER = "flight,day,hour,dest,delay,at"


@pytest.mark.parametrize(
    ("row", "column", "check"),
    [
        # 5 h later in UTC is still 1 January in New York, so only the repeated hour disagrees.
        ("2,1,5,BOS,1.0,2013-01-01T05:00:00Z", "hour", "= local hour of at (America/New_York)"),
        # 02:00 UTC on 2 January is 21:00 on 1 January in New York: the local date is the day.
        ("2,2,21,BOS,1.0,2013-01-02T02:00:00Z", "day", "= local day of at (America/New_York)"),
        (
            "2,2,1,BOS,1.0,2013-01-02T06:00:00Z",
            "<partition>",
            "local date of at in America/New_York = 2013-01-01",
        ),
        ("2,1,5,BOS,inf,2013-01-01T10:00:00Z", "delay", "finite"),
        ("2,1,5,BOS,NaN,2013-01-01T10:00:00Z", "delay", "finite"),
        ('2,1,5,"",1.0,2013-01-01T10:00:00Z', "dest", "not_nullable"),
    ],
    ids=["hour-shifted", "utc-date-not-local", "another-local-day", "inf", "nan", "blank-required-text"],
)
def test_time_semantics_and_values_the_contract_refuses(
    tmp_path: Path, row: str, column: str, check: str
) -> None:
    path = write(tmp_path, TIMED_HEADER, "1,1,5,ATL,NA,2013-01-01T10:00:00Z", row)

    result = ingest(path, table=TIMED_TABLE)

    contract = gate(result, "contract")
    assert contract.blocks
    failures = contract.evidence.filter(pl.col("column") == column)
    assert failures.height == 1 and failures["check"][0] == check and failures["rows"][0] == "2"


def test_rows_on_the_local_day_pass_even_when_their_utc_date_is_the_next(tmp_path: Path) -> None:
    path = write(
        tmp_path, TIMED_HEADER, "1,1,5,ATL,NA,2013-01-01T10:00:00Z", "2,1,23,BOS,-3,2013-01-02T04:59:00Z"
    )

    assert ingest(path, table=TIMED_TABLE).ok
