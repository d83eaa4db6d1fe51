"""A real prediction service on a free 127.0.0.1 port, run in a thread and stopped by the test."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Self

import httpx
import uvicorn
from fastapi import FastAPI

from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform_tests.harness import Harness
from mlplatform_tests.ports import free_port

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class AppServer:
    """An app served by uvicorn on a free 127.0.0.1 port, in a thread, stopped on exit."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Service(AppServer):
    def __init__(self, harness: Harness, log_root: Path | None = None, max_batch: int = 50) -> None:
        pipeline = build_pipeline(harness.spec, harness.home / "warehouse", harness.client, poll_seconds=0.2)
        self.pipeline = pipeline
        self.log_root = log_root or harness.home / "predictions"
        super().__init__(
            create_app({"flight_delay": pipeline}, PredictionLog(self.log_root, 0.2), TOKEN, max_batch)
        )


MAX_REQUESTS, MAX_SECONDS = 4000, 90.0


class Traffic(threading.Thread):
    def __init__(self, url: str, records: list[dict]) -> None:
        super().__init__(daemon=True)
        self.url, self.records = url, records
        self.stop = threading.Event()
        self.answers: list[dict] = []
        self.failures: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        with httpx.Client(headers=AUTH, timeout=10) as client:
            for n in itertools.count():
                if self.stop.is_set() or n >= MAX_REQUESTS or time.monotonic() - started > MAX_SECONDS:
                    return
                response = client.post(
                    f"{self.url}/v1/pipelines/flight_delay/predict",
                    json=self.records[n % len(self.records)],
                    headers={"X-Request-Id": f"load-{n}"},
                )
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                else:
                    self.answers.append(response.json())


def wait_for_variant(traffic: Traffic, variant: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(a["variant"] == variant for a in traffic.answers[-50:]):
            return
        time.sleep(0.1)
    raise AssertionError(f"no answer from {variant!r} within {seconds} s")
