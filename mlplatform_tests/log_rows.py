"""Prediction-log rows that tests build themselves: one place knows the row's fields, as the
service's ``Scorer`` writes them (``status`` is left to the log's default)."""

from __future__ import annotations

import datetime as dt
import json


def log_row(
    request_id: str,
    time: dt.datetime,
    day: str,
    inputs: dict,
    prediction: float,
    pipeline: str = "flight_delay",
    model_version: str = "1",
    variant: str = "champion",
    latency_ms: float = 1.0,
) -> dict:
    return {
        "request_id": request_id,
        "time": time,
        "event_day": day,
        "pipeline": pipeline,
        "model_version": model_version,
        "variant": variant,
        "inputs": json.dumps(inputs, default=str),
        "prediction": prediction,
        "latency_ms": latency_ms,
    }


def log_rows(pipeline: str, day: str, n: int, variant: str = "champion") -> list[dict]:
    """``n`` answers of ``day`` a second apart from noon, the inputs naming flights 0..n-1."""
    at = dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return [
        log_row(
            f"{day}-{variant}-{i}",
            at + dt.timedelta(seconds=i),
            day,
            {"flight": i},
            i / (n + 1),
            pipeline=pipeline,
            variant=variant,
        )
        for i in range(n)
    ]
