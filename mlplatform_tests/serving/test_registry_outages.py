"""Registry outages are visible and never fail a request: with the SQLite store locked, the MLflow
server frozen (SIGSTOP) or killed, polls time out instead of blocking, ``/ready`` and ``/metrics``
report the error and since when, the service keeps answering with what it has loaded, and the
error clears when the registry is back (the lock released, the frozen server resumed, the killed
one started again on its port). A real ``mlflow server`` process on 127.0.0.1 and the real
SQLite store of the shared trained flights."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from mlplatform.serving.app import build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.registry_models import RegistryModels
from mlplatform_tests.harness import Harness
from mlplatform_tests.ports import LOCALHOST, free_port
from mlplatform_tests.serving.server import AUTH, TOKEN, AppServer

POLL_TIMEOUT = 1.5
NAME = "flight_delay"


def _until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _record(harness: Harness) -> dict:
    raw = harness.store.read(NAME, "raw", "2013-01-20").head(1)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())[0]


def _service(harness: Harness, client: Callable[[], MlflowClient], log: Path) -> AppServer:
    models = RegistryModels(NAME, client, poll_seconds=0.2, poll_timeout=POLL_TIMEOUT)
    pipeline = build_pipeline(harness.spec, harness.home / "warehouse", client, 0.2, models=models)
    return AppServer(create_app({NAME: pipeline}, PredictionLog(log, 0.2), TOKEN, 50))


def _entry(server: AppServer) -> dict:
    return httpx.get(f"{server.url}/ready").json()["pipelines"][NAME]


def _assert_outage_reported_and_served(server: AppServer, harness: Harness, error: str) -> None:
    _until(lambda: _entry(server)["registry_error"] is not None, "the outage is reported")
    entry = _entry(server)
    answer = httpx.post(f"{server.url}/v1/pipelines/{NAME}/predict", json=_record(harness), headers=AUTH)
    metrics = httpx.get(f"{server.url}/metrics").text

    # A poll past its deadline "did not answer"; while it still hangs, later polls say it "has not
    # answered" since it started (a loaded machine reads /ready after one of those).
    assert any(e in entry["registry_error"] for e in (error, "did not answer", "has not answered")), entry
    assert entry["registry_error_since"] is not None and entry["state"] == "serving"
    assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    assert f'mlplatform_registry_up{{pipeline="{NAME}"}} 0.0' in metrics
    assert f'mlplatform_registry_error_since_timestamp_seconds{{pipeline="{NAME}"}}' in metrics


def _assert_recovered(server: AppServer, seconds: float = 30) -> None:
    _until(lambda: _entry(server)["registry_error"] is None, "the error clears", seconds)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert _entry(server)["registry_error_since"] is None
    assert f'mlplatform_registry_up{{pipeline="{NAME}"}} 1.0' in metrics
    assert "mlplatform_registry_error_since_timestamp_seconds{" not in metrics


def test_a_locked_sqlite_store_is_reported_and_the_service_keeps_answering(
    trained_flights: tuple[Harness, dict], tmp_path: Path
) -> None:
    harness, _ = trained_flights
    client = harness.client()
    client.set_registered_model_alias(NAME, "champion", "1")
    database = harness.tracking.tracking_uri.removeprefix("sqlite:///")
    try:
        with _service(harness, harness.client, tmp_path) as server:
            _until(lambda: _entry(server)["state"] == "serving", "the champion is served")
            lock = sqlite3.connect(database, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")  # no other connection reads or writes until it ends
            try:
                _assert_outage_reported_and_served(server, harness, "database is locked")
                since = _entry(server)["registry_error_since"]
                time.sleep(0.5)
                assert _entry(server)["registry_error_since"] == since  # since the first failure
            finally:
                lock.execute("ROLLBACK")
                lock.close()
            _assert_recovered(server)
    finally:
        client.delete_registered_model_alias(NAME, "champion")


class MlflowServer:
    """``mlflow server`` on a free 127.0.0.1 port, in its own process group (it runs uvicorn as a
    child): frozen, resumed and killed by the test."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.uri = f"http://{LOCALHOST}:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            LOCALHOST,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.home / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.home / "artifacts"),
        ]
        with (self.home / "server.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 300  # on a loaded 2-core machine it took 90 s
        while True:
            assert self.process.poll() is None, (self.home / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            try:
                if httpx.get(f"{self.uri}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, number)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):  # uvicorn, the child, may outlive its parent
            self.signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def mlflow_server(
    trained_flights: tuple[Harness, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Harness, MlflowServer]]:
    """A server whose registry holds the trained flights' v1 (files copied over) as champion. The
    MLflow client settings ``mlplatform serve`` uses: no HTTP retries, a 10 s request timeout (the
    poller retries on its own schedule)."""
    harness, _ = trained_flights
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    harness.client()
    source = harness.client().get_model_version(NAME, "1")
    scratch = Path(tempfile.mkdtemp(dir=tmp_path))
    folder = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1", dst_path=str(scratch)))
    (folder / "registered_model_meta").unlink(missing_ok=True)
    encoding = mlflow.artifacts.load_dict(f"runs:/{source.run_id}/encoding.json")
    server = MlflowServer(tmp_path)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        server.start()  # inside: a server that fails to start in time is still stopped
        mlflow.set_tracking_uri(server.uri)
        mlflow.set_registry_uri(server.uri)
        client = MlflowClient(server.uri, server.uri)
        with mlflow.start_run(experiment_id=client.create_experiment(NAME)) as run:
            mlflow.log_artifacts(str(folder), "model")
            mlflow.log_dict(encoding, "encoding.json")
        client.create_registered_model(NAME)
        version = client.create_model_version(
            NAME, f"runs:/{run.info.run_id}/model", run.info.run_id, tags=source.tags
        )
        client.set_registered_model_alias(NAME, "champion", version.version)
        yield harness, server
    finally:
        server.stop()
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def test_a_frozen_then_a_killed_mlflow_server_are_reported_and_the_service_keeps_answering(
    mlflow_server: tuple[Harness, MlflowServer], tmp_path: Path
) -> None:
    harness, registry = mlflow_server
    with _service(harness, lambda: MlflowClient(registry.uri, registry.uri), tmp_path / "log") as server:
        _until(lambda: _entry(server)["state"] == "serving", "the champion is served")

        registry.signal(signal.SIGSTOP)  # accepts connections, never answers
        try:
            started = time.monotonic()
            _assert_outage_reported_and_served(server, harness, "did not answer")
            assert time.monotonic() - started < POLL_TIMEOUT + 5  # reported within the deadline
        finally:
            registry.signal(signal.SIGCONT)
        _assert_recovered(server)

        registry.stop()  # SIGKILL to the server and its workers
        _assert_outage_reported_and_served(server, harness, "API request to")  # refused or reset
        registry.start()  # the same port and store: the service finds it again by itself
        _assert_recovered(server)
        assert httpx.get(f"{server.url}/ready/{NAME}").json()["champion"] == "1"
