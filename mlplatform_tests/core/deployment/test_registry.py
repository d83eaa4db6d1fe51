"""Tags and aliases written without MLflow's per-call registered-model read land as its public
methods write them, in a real SQLite registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlplatform.core.deployment.registry import delete_alias, set_alias, set_model_tags, set_version_tags


@pytest.fixture
def client(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("m")
    client.create_model_version("m", "file:///nowhere/1", tags={"as_of": "2013-02-01"})
    client.create_model_version("m", "file:///nowhere/2")
    return client


def test_tags_are_set_on_the_version_and_replace_earlier_values(client: MlflowClient) -> None:
    set_version_tags(client, "m", "1", {"gate.auc": "failed", "decision": "rejected"})
    set_version_tags(client, "m", "1", {"gate.auc": "passed"})

    assert client.get_model_version("m", "1").tags == {
        "as_of": "2013-02-01",
        "gate.auc": "passed",
        "decision": "rejected",
    }
    assert client.get_model_version("m", "2").tags == {}


def test_a_missing_version_is_refused_as_by_the_public_method(client: MlflowClient) -> None:
    with pytest.raises(MlflowException, match=r"not found|does not exist"):
        set_version_tags(client, "m", "3", {"decision": "rejected"})


def test_model_tags_and_aliases_are_set_and_an_alias_deleted(client: MlflowClient) -> None:
    set_model_tags(client, "m", {"rollout.stage": "0", "rollout": "{}"})
    set_alias(client, "m", "champion", "1")
    set_alias(client, "m", "challenger", "2")
    delete_alias(client, "m", "challenger")

    registered = client.get_registered_model("m")
    assert registered.tags == {"rollout.stage": "0", "rollout": "{}"}
    assert registered.aliases == {"champion": 1}  # MLflow gives the version as a number here
    assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
