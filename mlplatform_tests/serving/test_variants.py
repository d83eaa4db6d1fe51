"""Blue-green and A/B over HTTP: a real server on 127.0.0.1 following a real MLflow registry.

The registry is moved exactly as the ``deployment`` asset and the rollback job move it (the
rollout state machine's steps applied with ``apply_step``); the service converges by polling.
Versions 1 and 2 are the same booster registered twice, so who answered is told by the model
version and the variant of each answer.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import polars as pl
import pytest
from mlflow import MlflowClient

from mlplatform.core.deployment.apply import apply_step, read_state
from mlplatform.core.deployment.rollout import rollback, step
from mlplatform.core.spec import RolloutSpec, RolloutStage
from mlplatform.serving.prediction_log import read_log
from mlplatform.serving.registry_models import RegistryModels
from mlplatform.serving.routing import CHALLENGER, CHAMPION, bucket
from mlplatform_tests.harness import Harness
from mlplatform_tests.serving.server import AUTH, Service

MODEL = "flight_delay"
PREDICT, MODEL_STATE = f"/v1/pipelines/{MODEL}/predict", f"/v1/pipelines/{MODEL}/model"


def _challenger_beside_champion(harness: Harness) -> MlflowClient:
    """v1 the champion (``two_versions`` made it so), v2 the challenger: what ``candidate`` leaves
    for the deployment asset."""
    client = harness.client()
    client.set_registered_model_alias(MODEL, CHALLENGER, "2")
    return client


def _advance(client: MlflowClient, rollout: RolloutSpec) -> str:
    """One deployment step, as the deployment asset takes it; returns its action."""
    change = step(read_state(client, MODEL), rollout)
    apply_step(client, MODEL, change)
    return change.action


def _converge(service: Service, aliases: dict[str, str], strategy: str, stage: int) -> None:
    """Wait until the service reports what the registry says (it polls every 0.2 s)."""
    deadline = time.monotonic() + 15
    while True:
        state = httpx.get(service.url + MODEL_STATE, headers=AUTH).json()
        if (state["aliases"], state["rollout"]["strategy"], state["rollout"]["stage"]) == (
            aliases,
            strategy,
            stage,
        ):
            return
        assert time.monotonic() < deadline, f"the service still reports {state}"
        time.sleep(0.05)


def _records(harness: Harness, n: int) -> list[dict]:
    raw = harness.store.read(MODEL, "raw", "2013-01-20").head(n)
    return json.loads(raw.select(harness.spec.serving_columns).write_json())


def _answers(service: Service, records: list[dict], ids: list[str], target: str | None = None) -> list[dict]:
    """Single-record requests, all in flight at once (they are scored in shared micro-batches)."""

    async def send() -> list[dict]:
        headers = {**AUTH, **({"X-Target-Variant": target} if target else {})}
        async with httpx.AsyncClient(base_url=service.url, headers=headers, timeout=30) as http:
            responses = await asyncio.gather(
                *[
                    http.post(PREDICT, json=records[n % len(records)], headers={"X-Request-Id": request_id})
                    for n, request_id in enumerate(ids)
                ]
            )
        assert [r.status_code for r in responses] == [200] * len(ids), [r.text for r in responses][:3]
        return [r.json() for r in responses]

    answers = asyncio.run(send())
    assert [a["request_id"] for a in answers] == ids
    return answers


def _who(answers: list[dict]) -> set[tuple[str, str]]:
    return {(a["variant"], a["model_version"]) for a in answers}


@pytest.mark.integration
def test_blue_green_switches_all_traffic_at_once_and_back_to_the_loaded_previous_model(
    two_versions: Harness,
) -> None:
    client = _challenger_beside_champion(two_versions)
    rollout = RolloutSpec(strategy="blue_green")
    records, ids = _records(two_versions, 20), [f"bg-{n}" for n in range(60)]

    with Service(two_versions) as service:
        models = service.pipeline.models  # its snapshot is replaced at each registry change
        assert _advance(client, rollout) == "start"
        _converge(service, {CHAMPION: "1", CHALLENGER: "2"}, "blue_green", 0)
        blue, green = models.snapshot.models[CHAMPION].model, models.snapshot.models[CHALLENGER].model
        assert _who(_answers(service, records, ids)) == {(CHAMPION, "1")}  # green is loaded, idle
        assert _who(_answers(service, records, ids[:5], target=CHALLENGER)) == {(CHALLENGER, "2")}

        assert _advance(client, rollout) == "switch"
        _converge(service, {CHAMPION: "1", CHALLENGER: "2"}, "blue_green", 1)
        assert _who(_answers(service, records, ids)) == {(CHALLENGER, "2")}  # every caller at once
        assert _who(_answers(service, records, ids[:5], target=CHAMPION)) == {(CHAMPION, "1")}
        assert models.snapshot.models[CHALLENGER].model is green  # the switch loaded nothing

        assert _advance(client, rollout) == "promote"
        _converge(service, {CHAMPION: "2", "previous": "1"}, "none", 0)
        assert _who(_answers(service, records, ids)) == {(CHAMPION, "2")}
        assert models.snapshot.models["previous"].model is blue  # blue stays loaded for the switch back

        switch_back = rollback(read_state(client, MODEL))
        assert switch_back.action == "rollback"
        apply_step(client, MODEL, switch_back)
        _converge(service, {CHAMPION: "1"}, "none", 0)
        assert _who(_answers(service, records, ids)) == {(CHAMPION, "1")}
        assert models.snapshot.models[CHAMPION].model is blue  # switched back without loading anything


@pytest.mark.integration
def test_ab_splits_callers_by_request_id_sticks_to_them_and_obeys_the_target_header(
    two_versions: Harness,
) -> None:
    client = _challenger_beside_champion(two_versions)
    share = 0.3
    rollout = RolloutSpec(strategy="ab", stages=[RolloutStage(traffic=share)])
    records, ids = _records(two_versions, 20), [f"ab-{n}" for n in range(120)]
    expected = [CHALLENGER if bucket(i) < share else CHAMPION for i in ids]
    assert 0 < expected.count(CHALLENGER) < len(ids)  # these ids reach both sides
    version = {CHAMPION: "1", CHALLENGER: "2"}

    with Service(two_versions) as service:
        assert _advance(client, rollout) == "start"
        _converge(service, {CHAMPION: "1", CHALLENGER: "2"}, "ab", 1)

        first, again = _answers(service, records, ids), _answers(service, records, ids)
        assert [(a["variant"], a["model_version"]) for a in first] == [(v, version[v]) for v in expected]
        assert [a["variant"] for a in again] == expected  # each caller sticks to its side
        for target in (CHAMPION, CHALLENGER):
            targeted = [f"{target}-{n}" for n in range(10)]
            assert _who(_answers(service, records, targeted, target=target)) == {(target, version[target])}

        batch = httpx.post(
            service.url + PREDICT,
            json={"records": records[:10]},
            headers={**AUTH, "X-Request-Id": "ab-batch"},
        ).json()["predictions"]
        assert [a["variant"] for a in batch] == [
            CHALLENGER if bucket(f"ab-batch:{n}") < share else CHAMPION for n in range(10)
        ]
        assert _advance(client, rollout) == "none"  # an A/B test runs until promoted or rolled back

    logged = read_log(service.log_root, MODEL).filter(pl.col("request_id").is_in(ids))  # flushed at exit
    assert logged.height == 2 * len(ids)  # both rounds, each answer once
    by_id = {r["request_id"]: (r["variant"], r["model_version"]) for r in logged.iter_rows(named=True)}
    assert by_id == {i: (v, version[v]) for i, v in zip(ids, expected, strict=True)}


@pytest.mark.parametrize("keep_seconds", [60.0, 0.0])
def test_a_promotion_seen_half_way_does_not_unload_the_previous_champion(
    two_versions: Harness, keep_seconds: float
) -> None:
    """``apply_step`` moves one alias at a time: a poll can see ``champion`` moved to v2 before
    ``previous`` names v1. v1 must still be loaded when the next poll names it ``previous``; with
    ``keep_seconds=0`` (unload what no alias names) it is loaded again, a new object."""
    client = _challenger_beside_champion(two_versions)
    models = RegistryModels(MODEL, two_versions.client, poll_seconds=3600, keep_seconds=keep_seconds)
    models.refresh()
    blue = models.snapshot.models[CHAMPION].model

    client.set_registered_model_alias(MODEL, CHAMPION, "2")
    models.refresh()  # half-way: v1 is named by no alias
    assert {a: s.version for a, s in models.snapshot.models.items()} == {CHAMPION: "2", CHALLENGER: "2"}
    client.set_registered_model_alias(MODEL, "previous", "1")
    client.delete_registered_model_alias(MODEL, CHALLENGER)
    models.refresh()

    assert {a: s.version for a, s in models.snapshot.models.items()} == {CHAMPION: "2", "previous": "1"}
    assert (models.snapshot.models["previous"].model is blue) == (keep_seconds > 0)
