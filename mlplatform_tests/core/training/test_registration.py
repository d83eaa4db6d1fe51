"""A training run's version is registered in a real MLflow registry (SQLite) as MLflow's own
``register_model`` registers it: the name's first version creates the registered model, every
version keeps its source, run and tags."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.models.model import ModelInfo

from mlplatform.core.training.tracking import register_version


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MlflowClient]:
    """A fresh SQLite registry, also MLflow's global one while the test runs (``log_model`` uses it)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    saved = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(uri, uri)
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])


def _logged(client: MlflowClient, experiment_id: str) -> tuple[str, ModelInfo]:
    rows = np.random.default_rng(1).random((100, 3))
    booster = lgb.train({"verbose": -1, "num_threads": 1}, lgb.Dataset(rows, rows[:, 0]), num_boost_round=3)
    run = client.create_run(experiment_id)
    info = mlflow.lightgbm.log_model(booster, name="model", run_id=run.info.run_id)
    client.set_terminated(run.info.run_id)
    return run.info.run_id, info


def _record(client: MlflowClient, name: str, version: str) -> dict:
    stored = client.get_model_version(name, version)
    return {"source": stored.source, "run_id": stored.run_id, "tags": stored.tags, "status": stored.status}


def test_versions_are_registered_from_the_first_on_as_mlflow_registers_them(client: MlflowClient) -> None:
    experiment = client.create_experiment("e")
    logged = [_logged(client, experiment) for _ in range(3)]

    ours = [
        register_version(client, "m", info.model_uri, info.model_id, {"as_of": day})
        for (_, info), day in zip(logged[:2], ["2013-01-01", "2013-01-02"], strict=True)
    ]
    theirs = mlflow.register_model(logged[2][1].model_uri, "m", tags={"as_of": "2013-01-03"})

    assert [str(v.version) for v in [*ours, theirs]] == ["1", "2", "3"]
    assert [m.name for m in client.search_registered_models()] == ["m"]
    for (run_id, info), version, day in zip(logged, ["1", "2", "3"], ["01", "02", "03"], strict=True):
        assert _record(client, "m", version) == {
            "source": info.model_uri,
            "run_id": run_id,
            "tags": {"as_of": f"2013-01-{day}"},
            "status": "READY",
        }
