"""Prediction-log rows the storage tests build themselves, one per request."""

from __future__ import annotations

import datetime as dt
import json


def log_rows(pipeline: str, day: str, n: int, variant: str = "champion") -> list[dict]:
    at = dt.datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return [
        {
            "request_id": f"{day}-{variant}-{i}",
            "time": at + dt.timedelta(seconds=i),
            "event_day": day,
            "pipeline": pipeline,
            "model_version": "1",
            "variant": variant,
            "inputs": json.dumps({"flight": i}),
            "prediction": i / (n + 1),
            "latency_ms": 1.0,
        }
        for i in range(n)
    ]
