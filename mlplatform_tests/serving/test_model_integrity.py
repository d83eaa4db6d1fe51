"""Corrupt model files never stop the service, at start or while serving: a version whose files
fail the integrity check is refused, the service keeps serving what it had, /ready and /metrics
name the version and the reason, and an alert is sent. The smoke test (``deployment``) and the
rollout controller's check refuse it too.

Real uvicorn servers on 127.0.0.1 and the real MLflow registry of the shared trained flights: the
trained v1's files are registered again under a model name of this module's own (so the shared
``flight_delay`` model is untouched), once intact and once per kind of corruption, which is then
applied to the stored files the way a disk, a copy or a person would break them."""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import mlflow
import pytest

from mlplatform.core.deployment.integrity import DIGEST_TAG, IntegrityError
from mlplatform.core.spec import PipelineSpec
from mlplatform.core.training.tracking import integrity_problem, load_version
from mlplatform.serving.app import REFUSED, SERVING, build_pipeline, create_app
from mlplatform.serving.prediction_log import PredictionLog
from mlplatform.serving.smoke import smoke_test
from mlplatform_tests.harness import Harness
from mlplatform_tests.serving.server import AUTH, TOKEN, AppServer

NAME = "integrity_copy"


def _cut(size: int) -> Callable[[Path], None]:
    return lambda model: model.write_bytes(model.read_bytes()[:size])


def _flip(model: Path) -> None:
    content = bytearray(model.read_bytes())
    content[len(content) // 3] ^= 0x04
    model.write_bytes(bytes(content))


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], bool]] = {  # (corruption, digest recorded)
    "truncated at 10 KB": (_cut(10_000), True),
    "truncated at half": (lambda model: _cut(model.stat().st_size // 2)(model), True),
    "a bit flipped": (_flip, True),
    "empty": (lambda model: model.write_bytes(b""), True),
    "missing": (lambda model: model.unlink(), True),
    "truncated at 10 KB, no digest": (_cut(10_000), False),  # registered before digests: the child load
}


DIGEST = "recorded at registration"
REASONS = {kind: DIGEST for kind in CORRUPTIONS} | {
    "truncated at 10 KB, no digest": "killed the loading process"
}


def _register_copy(harness: Harness, corruption: Callable[[Path], None] | None, digest: bool) -> str:
    client = harness.client()
    source = client.get_model_version("flight_delay", "1")
    experiment = client.get_run(source.run_id).info.experiment_id
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(mlflow.artifacts.download_artifacts("models:/flight_delay/1", dst_path=scratch))
        (folder / "registered_model_meta").unlink(missing_ok=True)
        with mlflow.start_run(experiment_id=experiment, run_name=f"{NAME}-copy") as run:
            mlflow.log_artifacts(str(folder), "model")
            mlflow.log_dict(
                mlflow.artifacts.load_dict(f"runs:/{source.run_id}/encoding.json"), "encoding.json"
            )
    tags = {
        "threshold": source.tags["threshold"],
        **({DIGEST_TAG: source.tags[DIGEST_TAG]} if digest else {}),
    }
    version = client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run.info.run_id, tags=tags)
    if corruption is not None:
        corruption(Path(urlparse(run.info.artifact_uri).path) / "model" / "model.lgb")
    return str(version.version)


@pytest.fixture(scope="module")
def copies(trained_flights: tuple[Harness, dict]) -> Iterator[tuple[Harness, PipelineSpec, dict[str, str]]]:
    """v1 of ``NAME`` intact, then one version per corruption; a spec that serves ``NAME`` (its
    reference tables are absent from the warehouse, so features are partly null: scores still come)."""
    harness, _ = trained_flights
    client = harness.client()
    client.create_registered_model(NAME)
    versions = {"intact": _register_copy(harness, None, True)}
    versions |= {
        kind: _register_copy(harness, corrupt, digest) for kind, (corrupt, digest) in CORRUPTIONS.items()
    }
    try:
        yield harness, harness.spec.model_copy(update={"name": NAME}), versions
    finally:
        client.delete_registered_model(NAME)


def _server(harness: Harness, spec: PipelineSpec, folder: Path) -> AppServer:
    pipeline = build_pipeline(spec, harness.home / "warehouse", harness.client, poll_seconds=0.1)
    return AppServer(create_app({NAME: pipeline}, PredictionLog(folder, 0.2), TOKEN, 50))


def _until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _record(harness: Harness) -> dict:
    raw = harness.store.read("flight_delay", "raw", "2013-01-20").head(1)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())[0]


def test_a_corrupt_version_aliased_while_serving_is_refused_and_the_service_keeps_serving(
    copies: tuple[Harness, PipelineSpec, dict[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness, spec, versions = copies
    client = harness.client()
    client.set_registered_model_alias(NAME, "champion", versions["intact"])
    caplog.set_level(logging.WARNING, logger="mlplatform.alerts")
    record = _record(harness)
    with _server(harness, spec, tmp_path) as server:
        ready_url, predict_url = f"{server.url}/ready/{NAME}", f"{server.url}/v1/pipelines/{NAME}/predict"
        _until(lambda: httpx.get(ready_url).status_code == 200, "the intact champion is served")
        for kind in CORRUPTIONS:
            version = versions[kind]
            for alias in ("challenger", "champion"):  # a new challenger; a champion moved to it
                client.set_registered_model_alias(NAME, alias, version)
                _until(
                    lambda version=version: (
                        [r["version"] for r in httpx.get(ready_url).json()["refused"]] == [version]
                    ),
                    f"v{version} ({kind}) as {alias} is refused",
                )
                ready = httpx.get(ready_url)
                answer = httpx.post(predict_url, json=record, headers=AUTH)
                metrics = httpx.get(f"{server.url}/metrics").text

                assert ready.status_code == 200 and ready.json()["state"] == SERVING, ready.text
                [refusal] = ready.json()["refused"]
                assert refusal["alias"] == alias and refusal["since"], refusal
                assert re.search(REASONS[kind], refusal["reason"]), refusal["reason"]
                assert answer.status_code == 200 and answer.json()["model_version"] == versions["intact"]
                assert (
                    f'mlplatform_model_refused{{alias="{alias}",pipeline="{NAME}",version="{version}"}} 1.0'
                    in metrics
                )
                if alias == "challenger":
                    client.delete_registered_model_alias(NAME, "challenger")
                else:
                    client.set_registered_model_alias(NAME, "champion", versions["intact"])
                _until(lambda: httpx.get(ready_url).json()["refused"] == [], f"v{version} no longer named")
        assert httpx.get(f"{server.url}/health").status_code == 200

    alerted = [r.getMessage() for r in caplog.records if "model_refused" in r.getMessage()]
    assert len(alerted) == 2 * len(CORRUPTIONS)  # once per refusal, not once per poll
    assert all(f"{NAME}: model_refused: v" in message for message in alerted)


def test_a_corrupt_champion_at_start_is_refused_and_the_next_good_one_is_served(
    copies: tuple[Harness, PipelineSpec, dict[str, str]], tmp_path: Path
) -> None:
    harness, spec, versions = copies
    client = harness.client()
    corrupt = versions["truncated at half"]
    client.set_registered_model_alias(NAME, "champion", corrupt)
    with _server(harness, spec, tmp_path) as server:
        ready = httpx.get(f"{server.url}/ready/{NAME}")
        answer = httpx.post(f"{server.url}/v1/pipelines/{NAME}/predict", json=_record(harness), headers=AUTH)

        assert ready.status_code == 503 and ready.json()["state"] == REFUSED, ready.text
        assert ready.json()["refused"][0]["version"] == corrupt
        assert answer.status_code == 503

        client.set_registered_model_alias(NAME, "champion", versions["intact"])
        _until(
            lambda: httpx.get(f"{server.url}/ready/{NAME}").status_code == 200, "the good champion is served"
        )
        assert (
            httpx.post(
                f"{server.url}/v1/pipelines/{NAME}/predict", json=_record(harness), headers=AUTH
            ).json()["model_version"]
            == versions["intact"]
        )
    client.delete_registered_model_alias(NAME, "champion")


@pytest.mark.parametrize("kind", ["truncated at 10 KB", "a bit flipped", "truncated at 10 KB, no digest"])
def test_the_smoke_test_and_the_rollout_controller_check_refuse_a_corrupt_version(
    copies: tuple[Harness, PipelineSpec, dict[str, str]], kind: str
) -> None:
    """``deployment`` smoke-tests a challenger before any traffic, and the rollout controller checks
    it at every tick: both see what the service would refuse, and neither loads it in-process."""
    harness, spec, versions = copies
    problems = smoke_test(spec, versions[kind], 0.5, harness.home / "warehouse", [_record(harness)])
    assert len(problems) == 1 and "IntegrityError" in problems[0], problems
    assert integrity_problem(NAME, versions[kind]) is not None
    assert integrity_problem(NAME, versions["intact"]) is None


def test_a_version_loaded_before_is_reused_only_while_its_files_are_intact(
    copies: tuple[Harness, PipelineSpec, dict[str, str]],
) -> None:
    """``load_version`` keeps the models it loaded (the gated path loads the champion at every
    evaluation), but it downloads and verifies the files at every call: a version whose files differ
    from the ones loaded is refused as before, even when it claims the same recorded digest."""
    harness, _, versions = copies
    harness.client()  # this registry for the process-wide MLflow client
    first = load_version(NAME, versions["intact"])
    assert load_version(NAME, versions["intact"]) is first
    for kind in ("a bit flipped", "truncated at 10 KB, no digest"):
        with pytest.raises(IntegrityError, match=REASONS[kind]):
            load_version(NAME, versions[kind])
    assert load_version(NAME, versions["intact"]) is first
