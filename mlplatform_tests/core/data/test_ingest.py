"""Ingesting a landing file: bad data comes back as failed gates with evidence (never as an
exception), including rows whose partition expression gives another day than the file's."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mlplatform.core.data.contracts import FAILURE_COLUMNS, build_schema
from mlplatform.core.data.ingest import IngestResult, ingest_file
from mlplatform.core.gate_result import GateResult
from mlplatform.core.spec import TableSchema

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


def ingest(path: Path, trailing_rows: list[int] | None = None) -> IngestResult:
    return ingest_file(path, SCHEMA, CONTRACT, ["NA"], PARTITION, DAY, trailing_rows=trailing_rows)


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
    ("lines", "column", "problem"),
    [
        ([], "<file>", "file is empty (0 bytes)"),
        (["flight,year,month,origin", "1,2013,1,EWR"], "<file>", "missing column(s) ['day']"),
        ([HEADER, "1,2013,1,1,EWR", "abc,2013,1,1,EWR"], "flight", "column 'flight': 1 value(s)"),
        ([HEADER, "1,2013,1,1.5,EWR"], "day", "rows [1] = ['1.5']"),
    ],
    ids=["empty", "missing-column", "not-an-int", "fractional-int"],
)
def test_unreadable_file_fails_the_contract_gate_without_raising(
    tmp_path: Path, lines: list[str], column: str, problem: str
) -> None:
    path = write(tmp_path, *lines)

    result = ingest(path)

    assert not result.ok
    assert result.frame is None
    assert [g.name for g in result.gates] == ["contract"]  # no other gate runs on an untyped file
    contract = gate(result, "contract")
    assert contract.blocks
    assert str(path) in contract.summary
    assert problem in contract.summary
    assert contract.evidence is not None
    assert contract.evidence.schema == pl.Schema(FAILURE_COLUMNS)
    failure = contract.evidence.row(0, named=True)
    assert (failure["column"], failure["check"], failure["count"]) == (column, "readable and typed", 1)
    assert problem in failure["failure_case"]
    assert problem in result.summary()


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
    assert set(contract.evidence.iter_rows()) == {("origin", "isin(['EWR', 'JFK', 'LGA'])", "BOS", 2)}
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
        ("<partition>", f"{PARTITION} = {DAY}", "2012-12-31", 1),
        ("<partition>", f"{PARTITION} = {DAY}", "2013-01-02", 2),
    }


def test_partition_and_volume_are_not_checked_without_a_day(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,2,EWR")

    result = ingest_file(path, SCHEMA, CONTRACT, ["NA"])

    assert result.ok
    assert [g.name for g in result.gates] == ["contract", "primary_key", "completeness"]


def test_volume_outside_the_band_warns_but_does_not_block(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, "1,2013,1,1,EWR")

    result = ingest(path, trailing_rows=[100, 90, 110])

    volume = gate(result, "volume")
    assert not volume.passed
    assert volume.severity == "warn"
    assert volume.figures["trailing_median"] == 100
    assert result.ok


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
