"""Rollout steps in a real MLflow registry (SQLite): a reader between two tag writes of a step sees
the previous step whole, never half of each (the race that made blue-green tests flaky)."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from mlplatform.core.deployment.apply import ROLLOUT_TAG, apply_step, read_state
from mlplatform.core.deployment.rollout import Step


def test_a_reader_between_two_tag_writes_sees_the_previous_step_whole(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("m")
    shadow = {"rollout.strategy": "shadow", "rollout.stage": "0", "rollout.traffic": "0.0"}
    apply_step(client, "m", Step("start", tags=shadow))
    # The next step has written its first tag and not yet the rest: what a poll then reads.
    client.set_registered_model_tag("m", "rollout.strategy", "canary")

    state = read_state(client, "m")

    assert (state.strategy, state.stage, state.tags["rollout.traffic"]) == ("shadow", 0, "0.0")
    assert ROLLOUT_TAG not in state.tags
    after = apply_step(
        client,
        "m",
        Step(
            "advance",
            tags={**shadow, "rollout.strategy": "canary", "rollout.stage": "1", "rollout.traffic": "0.05"},
        ),
    )
    assert (after.strategy, after.stage, after.tags["rollout.traffic"]) == ("canary", 1, "0.05")
    assert after.tags["rollout.stage_started_at"] > state.tags["rollout.stage_started_at"]
