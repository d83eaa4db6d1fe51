"""Live metrics and the A/B significance test."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from mlplatform.core.monitoring.live import join_labels, two_proportion_z_test, variant_report


@pytest.mark.parametrize(
    ("a", "b", "z", "p"),
    [
        ((50, 100), (50, 100), 0.0, 1.0),
        ((60, 100), (40, 100), 2.828427, 0.004678),  # textbook: pooled 0.5, se 0.0707
        ((520, 1000), (500, 1000), 0.894606, 0.370996),  # pooled 0.51, se 0.022356
    ],
)
def test_two_proportion_z_test_known_values(
    a: tuple[int, int], b: tuple[int, int], z: float, p: float
) -> None:
    got_z, got_p = two_proportion_z_test(*a, *b)
    assert got_z == pytest.approx(z, abs=1e-5) and got_p == pytest.approx(p, abs=1e-5)


def test_z_test_without_data_is_undefined() -> None:
    assert all(math.isnan(v) for v in two_proportion_z_test(0, 0, 5, 10))


def test_report_joins_labels_by_entity_and_scores_each_variant() -> None:
    log = pl.DataFrame(
        {
            "request_id": ["a", "b", "c", "d"],
            "variant": ["champion", "champion", "challenger", "challenger"],
            "model_version": ["1", "1", "2", "2"],
            "inputs": [json.dumps({"flight": f, "carrier": "AA"}) for f in (1, 2, 3, 4)],
            "prediction": [0.9, 0.1, 0.2, 0.8],
        }
    )
    labels = pl.DataFrame({"flight": [1, 2, 3, 4, 5], "carrier": ["AA"] * 5, "delayed": [1, 0, 1, 0, 1]})

    joined = join_labels(log, labels, ["carrier", "flight"], "delayed")
    report = variant_report(joined, "delayed", {"1": 0.5, "2": 0.5}).sort("variant")

    assert joined.height == 4
    assert report.select("variant", "rows", "correct", "auc").rows() == [
        ("challenger", 2, 0, 0.0),
        ("champion", 2, 2, 1.0),
    ]
