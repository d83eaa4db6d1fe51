"""The prediction log's inputs: every request row as a JSON object, the same text whichever way
it was encoded (Python for a micro-batch of single records, polars for a large batch)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from mlplatform.serving.scoring import POLARS_ENCODE_ROWS, encoded_inputs

ROWS = pl.DataFrame(
    {
        "flight": [1545, 11, None],
        "carrier": ['U"A', "B6 ✈", None],
        "distance": [1400.0, 0.5, None],
        "cancelled": [False, True, None],
        "day": [dt.date(2013, 1, 20), dt.date(2013, 3, 1), None],
        "time_hour": pl.Series(
            [
                dt.datetime(2013, 1, 20, 10, tzinfo=dt.UTC),
                dt.datetime(2013, 3, 2, 2, 0, 0, 5, tzinfo=dt.UTC),
                None,
            ],
            dtype=pl.Datetime("us", "UTC"),
        ),
    }
)


@pytest.mark.parametrize("copies", [1, POLARS_ENCODE_ROWS // 3 + 1])  # 3 rows: Python; 66: polars
def test_each_row_is_its_json_object(copies: int) -> None:
    rows = pl.concat([ROWS] * copies)

    encoded = encoded_inputs(rows)

    assert len(encoded) == rows.height
    assert encoded[:3].to_list() == [
        '{"flight":1545,"carrier":"U\\"A","distance":1400.0,"cancelled":false,"day":"2013-01-20",'
        '"time_hour":"2013-01-20T10:00:00+00:00"}',
        '{"flight":11,"carrier":"B6 ✈","distance":0.5,"cancelled":true,"day":"2013-03-01",'
        '"time_hour":"2013-03-02T02:00:00.000005+00:00"}',
        '{"flight":null,"carrier":null,"distance":null,"cancelled":null,"day":null,"time_hour":null}',
    ]
    assert json.loads(encoded[1])["carrier"] == "B6 ✈"


def test_python_and_polars_encodings_are_the_same_text() -> None:
    small = encoded_inputs(ROWS)
    large = encoded_inputs(pl.concat([ROWS] * (POLARS_ENCODE_ROWS // 3 + 1)))

    assert large[: ROWS.height].to_list() == small.to_list()
