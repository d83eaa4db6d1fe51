"""Version tags written without MLflow's per-call registered-model read land as its public method
writes them, in a real SQLite registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlplatform.core.deployment.registry import set_version_tags


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
