"""The service's Prometheus metrics, in a registry of their own (one per app, so tests can run many)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from mlplatform.serving.registry_models import RegistryModels


class PredictionDistribution(Collector):
    """Predicted probabilities per pipeline and variant, exposed as a Prometheus histogram.

    Updated a batch at a time with numpy: ``Histogram.observe`` takes one value per call, and for a
    batch of 1,000 records those calls cost more than scoring the batch.
    """

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.bounds = np.asarray(bounds, dtype=np.float64)  # upper bounds ("le"); +Inf is implicit
        self._counts: dict[tuple[str, str], np.ndarray] = {}
        self._sums: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def observe(self, pipeline: str, variant: str, values: np.ndarray) -> None:
        per_bucket = np.bincount(np.searchsorted(self.bounds, values), minlength=len(self.bounds) + 1)
        with self._lock:
            key = (pipeline, variant)
            self._counts[key] = self._counts.get(key, 0) + per_bucket
            self._sums[key] = self._sums.get(key, 0.0) + float(values.sum())

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["pipeline", "variant"])
        labels = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        with self._lock:
            for key, counts in sorted(self._counts.items()):
                cumulative = np.cumsum(counts).tolist()
                family.add_metric(list(key), list(zip(labels, cumulative, strict=True)), self._sums[key])
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlplatform_requests",
            "Prediction requests",
            ["pipeline", "variant", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlplatform_request_latency_seconds",
            "Predict latency",
            ["pipeline"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.predictions = PredictionDistribution(
            "mlplatform_prediction", "Predicted probability", [i / 10 for i in range(1, 11)]
        )
        self.registry.register(self.predictions)
        self.staleness = Gauge(
            "mlplatform_registry_staleness_seconds",
            "Seconds since the registry was read",
            ["pipeline"],
            registry=self.registry,
        )
        self.registry_up = Gauge(
            "mlplatform_registry_up",
            "1 when the last registry poll succeeded, 0 while polls fail (error in /ready)",
            ["pipeline"],
            registry=self.registry,
        )
        self.registry_error_since = Gauge(
            "mlplatform_registry_error_since_timestamp_seconds",
            "Since when registry polls have failed (Unix time); absent while they succeed",
            ["pipeline"],
            registry=self.registry,
        )
        self.refused = Gauge(
            "mlplatform_model_refused",
            "1 for each model version an alias names that the service refused to load (reason in /ready)",
            ["pipeline", "alias", "version"],
            registry=self.registry,
        )

    def observe_registries(self, models: Mapping[str, RegistryModels]) -> None:
        """The registry gauges as each pipeline's poller sees them now (at scrape time)."""
        self.registry_error_since.clear()
        self.refused.clear()
        for name, served in models.items():
            self.staleness.labels(name).set(served.staleness_seconds or math.inf)
            self.registry_up.labels(name).set(0 if served.last_error else 1)
            if served.error_since is not None:
                self.registry_error_since.labels(name).set(served.error_since)
            for refusal in served.refused.values():
                self.refused.labels(name, refusal.alias, refusal.version).set(1)
