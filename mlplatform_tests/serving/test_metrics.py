"""The batch-at-a-time prediction histogram exposes what prometheus_client's own Histogram would."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from mlplatform.serving.metrics import PredictionDistribution

BOUNDS = [i / 10 for i in range(1, 11)]


def test_batches_of_predictions_expose_the_histogram_of_one_observation_each() -> None:
    batches = {
        "champion": [np.array([0.0, 0.1, 0.1000001, 0.35, 0.999, 1.0]), np.array([0.2, 0.2, 0.95])],
        "challenger": [np.array([0.05]), np.array([], dtype=np.float64)],
    }
    ours, reference = CollectorRegistry(), CollectorRegistry()
    distribution = PredictionDistribution("mlplatform_prediction", "Predicted probability", BOUNDS)
    ours.register(distribution)
    one_by_one = Histogram(
        "mlplatform_prediction", "Predicted probability", ["pipeline", "variant"], registry=reference,
        buckets=BOUNDS,
    )  # fmt: skip

    for variant, arrays in batches.items():
        for values in arrays:
            distribution.observe("flight_delay", variant, values)
            for value in values:
                one_by_one.labels("flight_delay", variant).observe(value)

    def samples(registry: CollectorRegistry) -> dict[tuple, float]:
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")  # when each registry made its series
        }

    assert samples(ours) == pytest.approx(samples(reference), rel=1e-12)  # sums add in another order
    champion_le_01 = (
        "mlplatform_prediction_bucket",
        (("le", "0.1"), ("pipeline", "flight_delay"), ("variant", "champion")),
    )
    assert samples(ours)[champion_le_01] == 2  # 0.0 and 0.1: a bucket holds the values up to its bound
