"""Data contracts: the pandera schema built from a table schema reports each violation as a row
(column, check, failure_case, count) and never raises for bad data."""

from __future__ import annotations

import polars as pl
import pytest

from mlplatform.core.data.contracts import FAILURE_COLUMNS, build_schema, describe, validate
from mlplatform.core.table_spec import TableSchema

SCHEMA = TableSchema.model_validate(
    {
        "primary_key": ["id"],
        "columns": {
            "id": {"type": "int"},
            "temp": {"type": "float", "nullable": True, "min": -40, "max": 130},
            "origin": {"type": "str", "allowed": ["EWR", "JFK", "LGA"]},
            "seats": {"type": "int"},
        },
    }
)
CONTRACT = build_schema("test.raw", SCHEMA)


def frame(**overrides: list) -> pl.DataFrame:
    columns = {
        "id": [1, 2, 3, 4],
        "temp": [10.5, None, -40.0, 130.0],
        "origin": ["EWR", "JFK", "LGA", "EWR"],
        "seats": [100, 150, 200, 50],
    } | overrides
    return pl.DataFrame(
        columns, schema={"id": pl.Int64, "temp": pl.Float64, "origin": pl.String, "seats": pl.Int64}
    )


def rows(failures: pl.DataFrame) -> set[tuple]:
    return set(failures.drop("rows").iter_rows())


def test_clean_frame_gives_empty_failure_table() -> None:
    # Nulls in a nullable column with a range, and values exactly on the bounds, are fine.
    failures = validate(CONTRACT, frame())

    assert failures.height == 0
    assert failures.schema == pl.Schema(FAILURE_COLUMNS)
    assert describe(failures) == "no violations"


def test_primary_key_is_not_part_of_the_contract() -> None:
    # Uniqueness is the primary_key gate's job (data_gates, exercised in test_ingest): a duplicated
    # key alone must not show up twice, once here and once there.
    assert validate(CONTRACT, frame(id=[1, 2, 2, 4])).height == 0


def test_range_violations_name_column_check_value_and_count() -> None:
    failures = validate(CONTRACT, frame(temp=[-41.0, 131.0, 131.0, 20.0]))

    assert rows(failures) == {
        ("temp", "greater_than_or_equal_to(-40.0)", "-41.0", 1),
        ("temp", "less_than_or_equal_to(130.0)", "131.0", 2),
    }


def test_allowed_values_violations_are_grouped_by_value() -> None:
    failures = validate(CONTRACT, frame(origin=["EWR", "XXX", "XXX", "ZZZ"]))

    assert rows(failures) == {
        ("origin", "isin(['EWR', 'JFK', 'LGA'])", "XXX", 2),
        ("origin", "isin(['EWR', 'JFK', 'LGA'])", "ZZZ", 1),
    }
    # Most frequent first, so describe() leads with the worst offender; its rows counted from 1.
    assert failures.row(0) == ("origin", "isin(['EWR', 'JFK', 'LGA'])", "XXX", 2, "2, 3")


def test_null_in_non_nullable_column_is_a_violation() -> None:
    failures = validate(CONTRACT, frame(seats=[None, 150, None, None]))

    assert rows(failures) == {("seats", "not_nullable", "null", 3)}


def test_wrong_dtype_and_missing_column_are_violations() -> None:
    failures = validate(CONTRACT, frame().with_columns(pl.col("seats").cast(pl.Float64)).drop("origin"))

    assert rows(failures) == {
        ("seats", "dtype('Int64')", "Float64", 1),
        ("test.raw", "column_in_dataframe", "origin", 1),
    }


def test_several_violations_are_all_reported_and_described() -> None:
    failures = validate(
        CONTRACT,
        frame(temp=[200.0, 200.0, 200.0, 1.0], origin=["EWR", "BOS", "LGA", "EWR"]),
    )

    assert rows(failures) == {
        ("temp", "less_than_or_equal_to(130.0)", "200.0", 3),
        ("origin", "isin(['EWR', 'JFK', 'LGA'])", "BOS", 1),
    }
    assert describe(failures) == (
        "4 violation(s) in 2 column(s): 'temp' (3), 'origin' (1); most frequent: column 'temp' failed "
        "less_than_or_equal_to(130.0) (e.g. 200.0, 3x at row(s) 1, 2, 3)"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("allow", [False, True])
def test_a_non_finite_float_is_refused_unless_the_column_allows_it(value: float, allow: bool) -> None:
    schema = TableSchema.model_validate(
        {
            "primary_key": ["id"],
            "columns": {
                "id": {"type": "int"},
                "x": {"type": "float", "nullable": True, "allow_non_finite": allow},
            },
        }
    )
    data = pl.DataFrame({"id": [1, 2, 3], "x": [1.0, value, 2.0]})

    failures = validate(build_schema("t", schema), data)

    if allow:
        assert failures.height == 0
    else:
        assert rows(failures) == {("x", "finite", str(value).replace("nan", "NaN"), 1)}
        assert failures["rows"].to_list() == ["2"]


@pytest.mark.parametrize("column_type", ["int", "float", "str", "bool", "date", "datetime"])
def test_schema_declares_each_column_type(column_type: str) -> None:
    schema = TableSchema.model_validate({"columns": {"c": {"type": column_type}}, "allow_duplicates": True})
    contract = build_schema("t", schema)

    wrong = pl.DataFrame({"c": [None]}, schema={"c": pl.Int32})

    assert rows(validate(contract, wrong)) >= {("c", "not_nullable", "null", 1)}
    assert any(check.startswith("dtype(") for check in validate(contract, wrong)["check"])
