"""Deployment driven by Dagster: smoke test, every rollout step a materialization, rollback."""

from __future__ import annotations

import dagster as dg

from mlplatform.core.deployment.registry import aliases
from mlplatform_tests.harness import Harness, check_evaluations, failure_messages


def _step(harness: Harness) -> tuple[dg.ExecuteInProcessResult, dict]:
    result = harness.materialize(["deployment"])
    events = result.get_asset_materialization_events()
    return result, ({k: v.value for k, v in events[0].materialization.metadata.items()} if events else {})


def test_canary_rollout_walks_every_stage_then_rollback_restores_the_champion(two_versions: Harness) -> None:
    client = two_versions.client()
    client.set_registered_model_alias("flight_delay", "challenger", "2")

    actions = []
    for _ in range(6):
        result, metadata = _step(two_versions)
        assert result.success, failure_messages(result)
        actions.append((metadata["action"], metadata["rollout"].get("rollout.traffic")))
    assert actions == [
        ("start", "0.0"),
        ("advance", "0.05"),
        ("advance", "0.25"),
        ("advance", "0.5"),
        ("advance", "1.0"),
        ("promote", "0"),
    ]
    assert aliases(client, "flight_delay") == {"champion": "2", "previous": "1"}
    assert client.get_model_version("flight_delay", "2").tags["smoke_test"] == "passed"

    definitions = two_versions.definitions
    rolled = definitions.resolve_job_def("flight_delay_rollback").execute_in_process(
        instance=two_versions.instance
    )
    assert rolled.success
    assert aliases(client, "flight_delay") == {"champion": "1"}
    recorded = rolled.get_asset_materialization_events()[0].materialization
    assert recorded.metadata["action"].value == "rollback"


def test_a_model_that_fails_the_smoke_test_never_gets_traffic(two_versions: Harness) -> None:
    client = two_versions.client()
    broken = client.create_model_version(
        "flight_delay", "file:///nonexistent/model", tags={"threshold": "0.5"}
    )
    client.set_registered_model_alias("flight_delay", "challenger", str(broken.version))

    result, _ = _step(two_versions)

    assert not result.success
    failed = [e for e in check_evaluations(result) if not e.passed]
    assert [e.check_name for e in failed] == ["smoke_test"]
    assert "cannot be loaded" in failure_messages(result) or "cannot be loaded" in str(failed[0].metadata)
    assert aliases(client, "flight_delay") == {"champion": "1"}
    tags = client.get_registered_model("flight_delay").tags
    assert tags.get("rollout.strategy", "none") == "none"
