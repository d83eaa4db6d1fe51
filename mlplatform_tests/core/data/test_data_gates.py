"""Data gates on one partition, called directly: the contract (including rows filed under another
day, and rows whose day cannot be computed), primary-key uniqueness, completeness and volume."""

from __future__ import annotations

import polars as pl
import pytest

from mlplatform.core.data.contracts import FAILURE_COLUMNS, build_schema
from mlplatform.core.data.gates import (
    DayRule,
    Delivery,
    completeness_gate,
    contract_gate,
    primary_key_gate,
    volume_gate,
)
from mlplatform.core.table_spec import TableSchema, VolumeSpec

SCHEMA = TableSchema.model_validate(
    {
        "primary_key": ["flight", "origin"],
        "columns": {
            "flight": {"type": "int"},
            "year": {"type": "int"},
            "month": {"type": "int", "min": 1, "max": 12},
            "day": {"type": "int", "min": 1, "max": 31},
            "origin": {"type": "str", "allowed": ["EWR", "JFK", "LGA"]},
            "temp": {"type": "float", "nullable": True, "min": -40, "max": 130},
        },
    }
)
CONTRACT = build_schema("test.raw", SCHEMA)
PARTITION = "DATE(year || '-' || month || '-' || day)"
RULE = DayRule(PARTITION, None, SCHEMA)
DAY = "2013-01-01"
CHECK = f"{PARTITION} = {DAY}"
TYPES = {
    "flight": pl.Int64,
    "year": pl.Int64,
    "month": pl.Int64,
    "day": pl.Int64,
    "origin": pl.String,
    "temp": pl.Float64,
}


def flights(*rows: tuple) -> pl.DataFrame:
    """Rows of (flight, year, month, day, origin, temp)."""
    return pl.DataFrame(list(rows), schema=TYPES, orient="row")


GOOD = [
    (1, 2013, 1, 1, "EWR", 10.5),
    (2, 2013, 1, 1, "JFK", None),
    (3, 2013, 1, 1, "LGA", -40.0),
]


# contract_gate


def test_contract_gate_passes_a_clean_partition() -> None:
    result = contract_gate(flights(*GOOD), CONTRACT, RULE, DAY)

    assert result.passed
    assert not result.blocks
    assert result.summary == "3 rows satisfy the contract"
    assert result.evidence is not None
    assert result.evidence.height == 0
    assert result.figures == {"rows": 3, "violations": 0}


def test_contract_gate_reports_range_and_allowed_violations_with_counts() -> None:
    frame = flights(*GOOD, (4, 2013, 1, 1, "BOS", 131.0), (5, 2013, 1, 1, "BOS", 20.0))

    result = contract_gate(frame, CONTRACT, RULE, DAY)

    assert not result.passed
    assert result.blocks
    assert result.evidence is not None
    assert set(result.evidence.drop("rows").iter_rows()) == {
        ("origin", "isin(['EWR', 'JFK', 'LGA'])", "BOS", 2),
        ("temp", "less_than_or_equal_to(130.0)", "131.0", 1),
    }
    assert result.figures["violations"] == 3
    assert result.summary.startswith(
        "3 violation(s) in 2 column(s): 'origin' (2), 'temp' (1); most frequent: column 'origin' failed "
        "isin(['EWR', 'JFK', 'LGA']) (e.g. BOS, 2x at row(s) 4, 5)"
    )


def test_contract_gate_flags_rows_filed_under_another_day() -> None:
    frame = flights(
        *GOOD,
        (4, 2013, 1, 2, "EWR", 1.0),
        (5, 2013, 1, 2, "JFK", 2.0),
        (6, 2012, 12, 31, "LGA", 3.0),
    )

    result = contract_gate(frame, CONTRACT, RULE, DAY)

    assert not result.passed
    assert result.blocks
    assert result.evidence is not None
    assert result.evidence.schema == pl.Schema(FAILURE_COLUMNS)
    assert set(result.evidence.drop("rows").iter_rows()) == {
        ("<partition>", CHECK, "2012-12-31", 1),
        ("<partition>", CHECK, "2013-01-02", 2),
    }
    assert result.figures == {"rows": 6, "violations": 3}


def test_contract_gate_does_not_check_the_day_without_a_partition_expression() -> None:
    frame = flights((1, 2013, 1, 2, "EWR", 1.0))

    assert contract_gate(frame, CONTRACT, None, DAY).passed
    assert contract_gate(frame, CONTRACT, RULE, None).passed
    assert not contract_gate(frame, CONTRACT, RULE, DAY).passed


def test_contract_gate_reports_a_row_with_month_13_as_evidence_not_an_exception() -> None:
    # DATE('2013-13-1') fails for the whole frame; the gate must still say which row is the problem.
    frame = flights(*GOOD, (4, 2013, 13, 1, "EWR", 5.0))

    result = contract_gate(frame, CONTRACT, RULE, DAY)

    assert not result.passed
    assert result.blocks
    assert result.evidence is not None
    assert set(result.evidence.drop("rows").iter_rows()) == {
        ("month", "less_than_or_equal_to(12.0)", "13", 1),
        ("<partition>", CHECK, "not a date", 1),
    }
    assert result.figures["violations"] == 2


def test_contract_gate_reports_february_30_which_passes_the_ranges_as_not_a_date() -> None:
    frame = flights(*GOOD, (4, 2013, 2, 30, "EWR", 5.0), (5, 2013, 2, 30, "JFK", 5.0))

    result = contract_gate(frame, CONTRACT, RULE, DAY)

    assert not result.passed
    assert result.evidence is not None
    assert result.evidence.to_dicts() == [
        {"column": "<partition>", "check": CHECK, "failure_case": "not a date", "count": 2, "rows": "4, 5"}
    ]


# primary_key_gate


def test_primary_key_gate_passes_unique_keys() -> None:
    result = primary_key_gate(flights(*GOOD), ["flight", "origin"])

    assert result.passed
    assert result.summary == "3 rows, ['flight', 'origin'] unique"
    assert result.figures == {"duplicated_rows": 0}
    assert result.evidence is not None
    assert result.evidence.height == 0


def test_primary_key_gate_reports_duplicated_keys_with_their_values_and_copies() -> None:
    frame = flights(
        (7, 2013, 1, 1, "EWR", 1.0),
        (7, 2013, 1, 1, "EWR", 2.0),
        (7, 2013, 1, 1, "EWR", 3.0),
        (7, 2013, 1, 1, "JFK", 4.0),  # same flight number from another airport: a different key
        (8, 2013, 1, 1, "JFK", 5.0),
        (8, 2013, 1, 1, "JFK", 6.0),
        (9, 2013, 1, 1, "LGA", 7.0),
    )

    result = primary_key_gate(frame, ["flight", "origin"])

    assert not result.passed
    assert result.blocks
    assert result.evidence is not None
    assert result.evidence.to_dicts() == [
        {"flight": 7, "origin": "EWR", "copies": 3},
        {"flight": 8, "origin": "JFK", "copies": 2},
    ]
    assert result.figures == {"duplicated_rows": 5}
    assert result.summary == (
        "2 key(s) of ['flight', 'origin'] appear more than once (5 rows), "
        "e.g. {'flight': 7, 'origin': 'EWR', 'copies': 3}"
    )


def test_primary_key_gate_passes_when_no_key_is_declared() -> None:
    duplicated = flights(GOOD[0], GOOD[0])

    result = primary_key_gate(duplicated, [])

    assert result.passed
    assert result.summary == "no primary key declared"
    assert result.figures == {"duplicates": 0}


# completeness_gate

NULLS = TableSchema.model_validate(
    {
        "primary_key": ["id"],
        "columns": {
            "id": {"type": "int"},
            "tailnum": {"type": "str", "nullable": True, "max_null_share": 0.3},
            "note": {"type": "str", "nullable": True},
            "gust": {"type": "float", "nullable": True, "max_null_share": 1.0},
        },
    }
)


def nulls_frame(
    id_nulls: int = 0, tailnum_nulls: int = 0, note_nulls: int = 0, gust_nulls: int = 0
) -> pl.DataFrame:
    """Ten rows; each column's first n values null."""

    def column(values: list, n: int) -> list:
        return [None] * n + values[n:]

    return pl.DataFrame(
        {
            "id": column(list(range(10)), id_nulls),
            "tailnum": column([f"N{i}" for i in range(10)], tailnum_nulls),
            "note": column(["x"] * 10, note_nulls),
            "gust": column([1.5] * 10, gust_nulls),
        },
        schema={"id": pl.Int64, "tailnum": pl.String, "note": pl.String, "gust": pl.Float64},
    )


def evidence_row(result_evidence: pl.DataFrame | None, column: str) -> dict:
    assert result_evidence is not None
    (row,) = result_evidence.filter(pl.col("column") == column).to_dicts()
    return row


def test_completeness_gate_passes_nulls_within_every_limit() -> None:
    result = completeness_gate(nulls_frame(tailnum_nulls=3, note_nulls=9, gust_nulls=5), NULLS)

    assert result.passed
    assert result.summary == "every column within its null-share limit"
    assert result.figures == {"columns_over_limit": 0}
    assert evidence_row(result.evidence, "tailnum") == {
        "column": "tailnum",
        "null_share": 0.3,
        "limit": 0.3,
        "ok": True,
    }


def test_completeness_gate_takes_the_limit_from_max_null_share() -> None:
    result = completeness_gate(nulls_frame(tailnum_nulls=4), NULLS)

    assert not result.passed
    assert result.blocks
    assert result.summary == "'tailnum' is 40.0% null (limit 30.0%)"
    assert evidence_row(result.evidence, "tailnum") == {
        "column": "tailnum",
        "null_share": 0.4,
        "limit": 0.3,
        "ok": False,
    }
    assert result.figures == {"columns_over_limit": 1}


def test_completeness_gate_fails_a_null_in_a_non_nullable_column() -> None:
    result = completeness_gate(nulls_frame(id_nulls=1), NULLS)

    assert not result.passed
    assert result.summary == "'id' is 10.0% null (limit 0.0%)"
    assert evidence_row(result.evidence, "id")["ok"] is False


def test_completeness_gate_fails_an_entirely_null_nullable_column() -> None:
    # "note" may be null (limit 100%), but a column that is all null means the feed stopped sending it.
    result = completeness_gate(nulls_frame(note_nulls=10), NULLS)

    assert not result.passed
    assert result.summary == "'note' is 100.0% null (limit 100.0%)"
    assert evidence_row(result.evidence, "note")["ok"] is False


def test_completeness_gate_accepts_an_entirely_null_column_whose_max_null_share_is_one() -> None:
    result = completeness_gate(nulls_frame(gust_nulls=10), NULLS)

    assert result.passed
    assert evidence_row(result.evidence, "gust") == {
        "column": "gust",
        "null_share": 1.0,
        "limit": 1.0,
        "ok": True,
    }


def test_completeness_gate_lists_failing_columns_first_worst_first() -> None:
    result = completeness_gate(nulls_frame(id_nulls=2, tailnum_nulls=5, note_nulls=10), NULLS)

    assert not result.passed
    assert result.figures == {"columns_over_limit": 3}
    assert result.evidence is not None
    assert result.evidence["column"].to_list() == ["note", "tailnum", "id", "gust"]
    assert result.summary.split("; ")[0] == "'note' is 100.0% null (limit 100.0%)"


# volume_gate

VOLUME = VolumeSpec(band=(0.5, 1.5), min_history=3)


@pytest.mark.parametrize(
    ("delivery", "passed", "severity", "summary_part"),
    [
        (Delivery(0, [100, 100, 100]), False, "error", "the partition has no rows"),
        (Delivery(0, []), False, "error", "the partition has no rows"),
        (Delivery(100, [90, 100, 110]), True, "error", "100 rows, within the band 0.5..1.5"),
        (Delivery(50, [90, 100, 110]), True, "error", "within the band"),
        (Delivery(150, [90, 100, 110]), True, "error", "within the band"),
        (
            Delivery(49, [90, 100, 110]),
            False,
            "error",
            "49 rows = 0.49 x the median 100 of the last 3 day(s)",
        ),
        (Delivery(160, [90, 100, 110, 300]), False, "error", "1.52 x the median 105"),
        (Delivery(10, [0, 0, 0]), False, "error", "inf x the median 0"),
        (Delivery(1, [100, 100]), True, "error", "2 trailing day(s), too few to judge"),
        (Delivery(100_000, []), True, "error", "0 trailing day(s), too few to judge"),
        (Delivery(55, [], marker=100), False, "error", "the done marker says 100 rows, the file has 55"),
        (Delivery(100, [], marker=100), True, "error", "too few to judge"),
        (Delivery(100, [], marker_problem="no done marker x.done"), False, "error", "no done marker x.done"),
        (
            Delivery(100, [], stored=1000),
            False,
            "error",
            "would replace the stored 1000 (0.10 x, band 0.5..1.5)",
        ),
        (Delivery(10_000, [], stored=100), False, "error", "(100.00 x, band"),
        (Delivery(110, [], stored=100), True, "error", "too few to judge"),
    ],
    ids=[
        "empty-blocks",
        "empty-without-history-blocks",
        "at-median",
        "on-low-edge",
        "on-high-edge",
        "below-band",
        "above-band-even-median",
        "zero-median",
        "too-little-history",
        "no-history",
        "marker-says-more",
        "marker-agrees",
        "marker-missing",
        "redelivery-shrinks",
        "redelivery-grows",
        "redelivery-within-band",
    ],
)
def test_volume_gate(delivery: Delivery, passed: bool, severity: str, summary_part: str) -> None:
    result = volume_gate(delivery, VOLUME)

    assert result.name == "volume"
    assert result.passed is passed
    assert result.severity == severity
    assert result.blocks is (not passed)
    assert summary_part in result.summary
    assert result.figures["rows"] == delivery.rows


def test_volume_outside_the_band_only_warns_when_the_table_says_it_does_not_block() -> None:
    warn_only = VolumeSpec(band=(0.5, 1.5), blocking=False)

    outside = volume_gate(Delivery(30, [90, 100, 110]), warn_only)
    incomplete = volume_gate(Delivery(30, [90, 100, 110], marker=60), warn_only)

    assert not outside.passed and outside.severity == "warn" and not outside.blocks
    assert outside.figures == {"rows": 30, "trailing_median": 100.0, "stored_rows": None, "history": 3}
    assert outside.summary == "30 rows = 0.30 x the median 100 of the last 3 day(s) (band 0.5..1.5)"
    # A delivery its own marker calls incomplete blocks whatever the band's setting.
    assert incomplete.blocks


def test_volume_gate_uses_the_table_band_and_min_history() -> None:
    narrow = VolumeSpec(band=(0.9, 1.1), min_history=1)

    assert not volume_gate(Delivery(80, [100]), narrow).passed
    assert volume_gate(Delivery(80, [100]), VOLUME).summary.endswith("too few to judge the band")


def test_an_operator_can_accept_a_run_s_volume_but_never_an_incomplete_delivery() -> None:
    redelivery = volume_gate(Delivery(2000, [], stored=1000), VOLUME, accepted=True)
    incomplete = volume_gate(Delivery(2000, [], stored=1000, marker=2100), VOLUME, accepted=True)

    assert not redelivery.passed and not redelivery.blocks and redelivery.severity == "warn"
    assert redelivery.summary.endswith("(accepted for this run by its operator)")
    assert incomplete.blocks
